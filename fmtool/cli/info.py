"""`fmtool info`: what fmtool would run on and where it keeps its files."""

from __future__ import annotations

from typing import Any

from fmtool import __version__
from fmtool.cli import output
from fmtool.cli.options import JsonOpt

# The figures of a model card that info shows (the card in the checkpoint holds more).
CARD_FIGURES = ("test_accuracy", "val_accuracy", "photo_accuracy", "psnr", "ssim")


def bundled_models() -> dict[str, dict[str, Any]]:
    """What each model that ships with fmtool is, by kind, from its model card."""
    from fmtool.engine.bundled import bundled_checkpoint
    from fmtool.engine.checkpoint import load_checkpoint
    from fmtool.engine.runs import RUN_KINDS

    models = {}
    for kind in RUN_KINDS:
        path = bundled_checkpoint(kind)
        if path is None:
            continue
        card = load_checkpoint(path, expect_kind=kind).meta.get("card", {})
        figures = {k: v for k, v in card.get("metrics", {}).items() if k in CARD_FIGURES}
        models[kind] = {"path": str(path), "command": card.get("command"), **figures}
    return models


def info(json_out: JsonOpt = False) -> None:
    """Version, the device fmtool would choose, torch version, where files live, and the models
    that ship with fmtool (used when there is no run of that kind yet, or as --checkpoint builtin)."""
    import torch

    from fmtool.engine import paths
    from fmtool.engine.device import choose_device, describe

    device = choose_device("auto")
    data = {
        "fmtool": __version__,
        "torch": torch.__version__,
        "device": describe(device),
        "cache_dir": str(paths.cache_dir()),
        "datasets_dir": str(paths.datasets_dir()),
        "runs_dir": str(paths.runs_dir()),
        "bundled": bundled_models(),
    }
    if json_out:
        output.print_json(data)
        return
    for key, value in data.items():
        if key != "bundled":
            output.stdout.print(f"{key:<13} {output.escape(value)}")
    for kind, model in data["bundled"].items():
        figures = ", ".join(f"{name} {value:.4f}" for name, value in model.items()
                            if isinstance(value, float))
        output.stdout.print(f"{'bundled ' + kind:<13} {output.escape(model['path'])} ({figures})")
