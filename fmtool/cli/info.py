"""`fmtool info`: what fmtool would run on and where it keeps its files; or, given a checkpoint,
what that model is and every recipe value it was trained with."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from fmtool import __version__
from fmtool.cli import output
from fmtool.cli.options import JsonOpt
from fmtool.engine.bundled import BUILTIN

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


# What a checkpoint's card shows, in this order: the rest of its metadata is for fmtool itself.
CARD_KEYS = ("kind", "epoch", "config", "recipe", "metrics", "card")


def checkpoint_card(checkpoint: Path) -> dict[str, Any]:
    """A checkpoint's model, the recipe it was trained with (every value), the epoch it holds and
    that epoch's scores, and for a bundled model its card (measured figures and command)."""
    from fmtool.engine.checkpoint import load_checkpoint
    from fmtool.engine.runs import resolve_checkpoint

    path = resolve_checkpoint(checkpoint, "cnn")
    meta = load_checkpoint(path).meta
    return {"checkpoint": str(path), **{key: meta[key] for key in CARD_KEYS if key in meta}}


def bundled_cards() -> dict[str, dict[str, Any]]:
    """`checkpoint_card` of every model that ships with fmtool, by kind: `builtin` names the
    bundled model of whichever kind a command reads, and info reads both."""
    from fmtool.engine.bundled import bundled_checkpoint
    from fmtool.engine.runs import RUN_KINDS, choose_checkpoint

    return {kind: checkpoint_card(choose_checkpoint(Path(BUILTIN), kind)[0])
            for kind in RUN_KINDS if bundled_checkpoint(kind) is not None}


def _print_card(card: dict[str, Any]) -> None:
    """One `key value` row per table of the card, and one per entry of a bundled model's card."""
    card = dict(card)
    table = card.pop("card", {})
    rows = ([(f"card.{k}", v) for k, v in table.items() if k != "recipe"]
            if isinstance(table, dict) else [("card", table)])
    for key, value in [*card.items(), *rows]:
        output.stdout.print(f"{key:<13} {output.escape(_card_value(value))}")


def _card_value(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={_card_value(v)}" for k, v in value.items())
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) >= 1e-3 or value == 0 else f"{value:g}"
    return str(value)


def info(
    checkpoint: Annotated[Optional[Path], typer.Argument(help="A checkpoint (.pt file or run folder): show its model, every recipe value it was trained with, its epoch and scores instead; builtin shows both bundled models' cards.", show_default=False)] = None,
    json_out: JsonOpt = False,
) -> None:
    """Version, the device fmtool would choose, torch version, where files live, and the models
    that ship with fmtool (used when there is no run of that kind yet, or as --checkpoint
    builtin); with a checkpoint, that model's card."""
    if checkpoint is not None and checkpoint.as_posix() == BUILTIN:
        cards = bundled_cards()
        if json_out:
            output.print_json(cards)
            return
        for index, card in enumerate(cards.values()):
            if index:
                output.stdout.print()
            _print_card(card)
        return
    if checkpoint is not None:
        card = checkpoint_card(checkpoint)
        if json_out:
            output.print_json(card)
            return
        _print_card(card)
        return
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
