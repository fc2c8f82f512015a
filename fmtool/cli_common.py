"""Pieces every command module shares: option types, JSON output, and starting a training run.

Like cli.py, this module must not import torch at import time (help and completion stay fast).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Callable, Optional

import typer

from fmtool.errors import UserError

if TYPE_CHECKING:
    import torch

    from fmtool.recipes import Recipe
    from fmtool.train import Task

DeviceOpt = Annotated[str, typer.Option(
    "--device", help="auto prefers CUDA, then MPS, then the CPU.",
    metavar="auto|cpu|cuda|mps")]
PrecisionOpt = Annotated[str, typer.Option(
    "--precision", help="Autocast dtype; auto = bf16 on CUDA and on CPUs with fast bf16, else fp32.",
    metavar="auto|fp32|bf16|fp16")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout only.")]
NameOpt = Annotated[Optional[str], typer.Option(help="Run name (folder); default: date-time.")]
ResumeOpt = Annotated[bool, typer.Option(help="Continue the named (or latest) run where it stopped.")]


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")
    sys.stdout.flush()


def choose_recipe(kind: str, recipes: dict[str, "Recipe"], recipe_name: str, name: str | None,
                  resume: bool, overrides: dict[str, Any],
                  options: dict[str, Any]) -> tuple[Path, "Recipe", dict[str, Any]]:
    """The run folder, recipe and options of a `train` command.

    A new run takes the named recipe with the command line's overrides; `--resume` takes the
    run's own recipe and options back from its run.json (only `--epochs` may extend it).
    """
    from fmtool import paths
    from fmtool.recipes import Recipe

    if recipe_name not in recipes:
        raise UserError(f"unknown recipe {recipe_name!r}; choose one of {', '.join(recipes)}")
    folder = paths.training_run_dir(kind, name, resume)
    if not resume:
        return folder, recipes[recipe_name].with_overrides(**overrides), options
    from fmtool.train import read_run_info

    info = read_run_info(folder)
    recipe = Recipe.from_dict(info["recipe"]).with_overrides(epochs=overrides.get("epochs"))
    return folder, recipe, info["options"]


def run_training(kind: str, recipe: "Recipe", options: dict[str, Any], folder: Path,
                 device_name: str, resume: bool,
                 build_task: Callable[["torch.device"], "Task"]) -> None:
    """Shared by `train cnn` and `train vae`: seed, build the task, fit (or resume), report."""
    from fmtool import console
    from fmtool.device import choose_device, describe, precision_name, seed_everything
    from fmtool.train import Trainer, TrainingInterrupted

    device = choose_device(device_name)
    console.stderr.print(f"fmtool train {kind}: run [bold]{folder.name}[/] on {describe(device)}")
    console.stderr.print(f"recipe {recipe.name}: " + ", ".join(
        f"{k}={v}" for k, v in recipe.to_dict().items() if k not in ("name", "description")))
    seed_everything(recipe.seed)
    task = build_task(device)
    console.stderr.print(f"precision {precision_name(task.precision)}")
    trainer = Trainer(task, recipe, folder, device, options=options)
    if resume:
        trainer.resume()
        console.stderr.print(f"resuming at epoch {trainer.state.epoch + 1}, "
                             f"batch {trainer.state.step + 1}")
    try:
        history = trainer.fit()
    except TrainingInterrupted:
        console.stderr.print(f"stopped; continue with: fmtool train {kind} --name {folder.name} --resume")
        raise typer.Exit(130)
    console.stderr.print(f"done: {len(history)} epochs, best {task.best_metric} "
                         f"{trainer.state.best:.4f}; run folder {folder}")
