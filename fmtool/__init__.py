"""fmtool: train, evaluate and explore the report's image models, from Python or the terminal.

    from fmtool import CNN, VAE
    CNN.load().classify(["shoe.jpg"])[0].label

The names below load on first use, so `import fmtool` (and `fmtool --help`) stays instant and
imports neither torch nor anything that draws on a terminal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

_LAZY = {
    "CNN": "fmtool.api", "VAE": "fmtool.api", "Classification": "fmtool.api",
    "Evaluation": "fmtool.api", "LayerProjection": "fmtool.api", "Reconstruction": "fmtool.api",
    "CNNConfig": "fmtool.cnn.config", "VAEConfig": "fmtool.vae.config",
    "TrainingInterrupted": "fmtool.engine.trainer", "UserError": "fmtool.errors",
}
__all__ = ["__version__", "CNN", "VAE", "Classification", "Evaluation", "LayerProjection",
           "Reconstruction", "CNNConfig", "VAEConfig", "TrainingInterrupted", "UserError"]

if TYPE_CHECKING:
    from fmtool.api import CNN, VAE, Classification, Evaluation, LayerProjection, Reconstruction
    from fmtool.cnn.config import CNNConfig
    from fmtool.engine.trainer import TrainingInterrupted
    from fmtool.errors import UserError
    from fmtool.vae.config import VAEConfig


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'fmtool' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_LAZY[name]), name)


def __dir__() -> list[str]:
    return sorted(__all__)
