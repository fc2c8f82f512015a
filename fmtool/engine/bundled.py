"""The trained models that ship inside fmtool, as package data: fmtool/weights/<kind>.pt.

They are ordinary checkpoints (weights only, loaded with `weights_only`, no code runs) with a
model card in their metadata (`card`: the command that trained them, their data and measured
figures). A command uses one when the user has no run of that kind yet, or names it: `builtin`.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

BUILTIN = "builtin"  # what --checkpoint takes to mean the bundled model


def bundled_checkpoint(kind: str) -> Path | None:
    """The bundled model of `kind` ("cnn", "vae"), or None when this build ships none."""
    path = Path(str(resources.files("fmtool").joinpath("weights", f"{kind}.pt")))
    return path if path.is_file() else None


def is_bundled(path: Path) -> bool:
    """Whether `path` is one of the package's own models (never a place to write figures)."""
    weights = Path(str(resources.files("fmtool").joinpath("weights")))
    try:
        return path.resolve().parent == weights.resolve()
    except OSError:
        return False
