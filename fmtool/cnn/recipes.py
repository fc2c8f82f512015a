"""The CNN's training recipes, held once as plain data: the report's Table 1 and two of ours.

Every CNN-only field defaults to the report's text (no augmentation, dropout 0.7, the text's
network) or to our honest selection (5,000 held-out images), so a recipe names only what it
changes; `paper` names what the report's code did instead (its network, every training image).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from fmtool.choices import Variant
from fmtool.engine.recipe import AUGMENT_PANEL, MODEL_PANEL, Recipe, knob


@dataclass(frozen=True, kw_only=True)
class CNNRecipe(Recipe):
    """A Recipe plus what the Fashion-MNIST CNN adds: augmentation, selection, width, dropout."""

    # Fashion-MNIST's pictures are 28x28; the report upsamples them to 32, which costs about 30%
    # more work per image for no detail the pictures have.
    image_size: int = knob("Model input size in pixels (the pictures are 28x28; the report "
                           "upsamples to 32).", default=32, min=8, max=256, multiple_of=4,
                           panel=MODEL_PANEL)
    label_smoothing: float = knob("Label smoothing; 0 = off.", min=0.0, max=0.5,
                                  panel=AUGMENT_PANEL, default=0.0)
    crop_padding: int = knob("Random crop after padding by N pixels; 0 = off.", min=0, max=16,
                             panel=AUGMENT_PANEL, default=0)
    flip: bool = knob("Random horizontal flips.", panel=AUGMENT_PANEL, default=False)
    erase: float = knob("Random-erasing probability; 0 = off.", min=0.0, max=1.0,
                        panel=AUGMENT_PANEL, default=0.0)
    tta_flip: bool = knob("Evaluate on each image and its mirror.", panel=AUGMENT_PANEL,
                          default=False)
    photo_jitter: float = knob("Share of training images given what a photo keeps after "
                               "preprocessing: size and position off, background left, other "
                               "contrast and gamma, blur, noise; 0 = off.", min=0.0, max=1.0,
                               panel=AUGMENT_PANEL, default=0.0)
    photo_strength: float = knob("Scale of the photo jitter's ranges.", min=0.0, max=2.0,
                                 panel=AUGMENT_PANEL, default=1.0)
    dropout: float = knob("Rate of the CNN's dropouts (code: blocks 1 and 2; the last is 0.5).",
                          min=0.0, max=0.95, panel=AUGMENT_PANEL, default=0.7)
    variant: str = knob("text: the network the report describes (7 activations, no conv bias, "
                        "standardised input); code: the author's published one (LeakyReLU after "
                        "all 9 convolutions, conv bias, 0.5 dropout before the output, input "
                        "min-max scaled to [0, 1]).", choices=Variant, panel=MODEL_PANEL,
                        default="text")
    # Width 4 is 155 million weights (2.5 GB to train with Adam); 8 would be 620 million.
    width: float = knob("Scale every layer's channels.", min=0.05, max=4.0, panel=MODEL_PANEL,
                        default=1.0)
    val_size: int = knob("Training images held out to pick the best epoch (a tenth of the "
                         "training images at most); 0 = pick on test accuracy, the report's "
                         "measure.", min=0, max=1_000_000,
                         panel=MODEL_PANEL, default=5000)


# The report's protocol as its code ran it: all 60,000 training images (nothing held out), 100
# epochs, and the best test accuracy over the epochs (its 93.72% is 9,417 right of 10,000 test
# images, 94.17%, printed over 10,048). The network is the author's published one (`code`),
# since the 94.17% was measured on it; `--variant text` trains the network the text describes.
PAPER = CNNRecipe(
    name="paper",
    epochs=100,
    batch_size=64,
    lr=5e-4,
    weight_decay=1e-3,
    step_size=10,
    gamma=0.5,
    seed=6,
    val_size=0,
    variant="code",
    description="the report's Table 1 and protocol: Adam 5e-4, wd 1e-3, StepLR 10/0.5, 100 "
                "epochs, batch 64, all 60,000 training images, the author's network (code)",
)

STRONG = replace(
    PAPER,
    name="strong",
    epochs=60,
    batch_size=128,
    lr=3e-3,
    weight_decay=5e-2,
    optimizer="adamw",
    schedule="onecycle",
    warmup=0.15,
    label_smoothing=0.1,
    ema_decay=0.999,
    crop_padding=2,
    flip=True,
    erase=0.5,
    tta_flip=True,
    # The augmentations regularise; the report's 0.7 dropout on top of them makes the network
    # underfit (training accuracy stays below validation accuracy).
    dropout=0.3,
    # Ours: the text's network, and the best epoch picked on held-out images, not on the test set.
    variant="text",
    val_size=5000,
    description="the CNN the report's text describes, better trained: crop, flip and erasing "
                "augmentation, label smoothing, one-cycle AdamW, weight EMA, flip TTA, lighter "
                "dropout; a GPU recipe (60 epochs)",
)

# The report's accuracy on two CPU cores in 15 minutes (benchmarks/speedrun.py; docs/speed.md
# has its table). Per unit of time a quarter-width network for many epochs and a 3/8-width one
# for fewer reach the same accuracy; the narrow one is the safer bet on time. It reads the
# pictures at their own 28x28 (the report's upsampling to 32 is 30% more work for no detail),
# without dropout (its mask generation was 7% of a step, and the augmentations regularise
# enough), and scores the held-out and test images only in its last 3 epochs (a one-cycle
# schedule with a weight EMA peaks at its end).
CPU = replace(
    STRONG,
    name="cpu",
    epochs=20,
    lr=4e-3,
    warmup=0.2,
    ema_decay=0.999,
    evaluate_last=3,
    image_size=28,
    crop_padding=1,
    erase=0.0,
    width=0.25,
    dropout=0.0,
    description="the report's accuracy on a 2-core CPU in under 15 minutes: quarter width at "
                "28x28, 20 epochs, one-cycle AdamW, flips and 1-pixel crops, label smoothing, "
                "weight EMA, flip TTA, scored in the last 3 epochs",
)

# The model that ships inside fmtool: 3/8 width (1.4 million weights, 2.7 MB in fp16) with the
# `cpu` recipe's speed choices (28x28 input, no dropout), plus light erasing and photo jitter at
# its mildest tried setting (the only one within 0.3 pt of the same recipe without it). Every
# epoch is scored: the shipped model carries its per-epoch history for the report's curves.
BUNDLED = replace(
    STRONG,
    name="bundled",
    epochs=20,
    lr=4e-3,
    warmup=0.2,
    ema_decay=0.999,
    image_size=28,
    crop_padding=1,
    erase=0.1,
    width=0.375,
    dropout=0.0,
    photo_jitter=0.3,
    photo_strength=0.5,
    description="the model shipped inside fmtool: 3/8 width for 20 epochs at 28x28 with one-cycle "
                "AdamW, flips, light crops, erasing, mild photo jitter, label smoothing and weight "
                "EMA (about 45 minutes on one core of a 2-core CPU with native bf16, as its model "
                "card records)",
)

RECIPES: dict[str, CNNRecipe] = {r.name: r for r in (PAPER, STRONG, CPU, BUNDLED)}
