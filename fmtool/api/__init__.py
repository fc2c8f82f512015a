"""fmtool's Python API: one object per model, shared by scripts, notebooks and the `fmtool`
command line (whose commands are argument parsing and printing over these calls).

    from fmtool import CNN, VAE

See docs/python-api.md for every call with examples.
"""

from fmtool.api.cnn import CNN
from fmtool.api.results import Classification, Evaluation, LayerProjection, Reconstruction
from fmtool.api.vae import VAE

__all__ = ["CNN", "VAE", "Classification", "Evaluation", "LayerProjection", "Reconstruction"]
