"""Photos of clothing made into what Fashion-MNIST's pipeline would have made of them.

background: the background surface, fitted to the picture's border. segmentation: where the item
is (GrabCut-like colour models, started from the central rectangle). mixture: the colour models,
many Gaussian mixtures fitted at once. composition: the item picture, light on black, trimmed,
squared, centred. views: the nine views `classify` averages over, from a file or a folder.
jitter: what a photo keeps after all this, drawn at random for training images.
"""
