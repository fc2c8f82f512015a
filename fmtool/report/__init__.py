"""`fmtool report`: the report's study rebuilt from checkpoints into one folder.

study (the builder: outputs, progress, all or nothing) runs cnn_figures (Figures 1-7, Table 2)
and vae_figures (Figures 8-12) over what cnn/ and vae/ already do; published holds the report's
own numbers, architecture and diagrams draw Figures 2 and 8 from the models themselves, figures
draws Figure 1, tables sets the report beside fmtool, document writes index.html and report.md.
Nothing heavy is imported here: the command line reads `published` before torch loads.
"""
