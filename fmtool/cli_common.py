"""Pieces every command module shares: option types, JSON output, and starting a training run.

Like cli.py, this module must not import torch at import time (help and completion stay fast).
"""

from __future__ import annotations

import json
import math
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
    "--precision", help="Autocast dtype; auto = bf16 on CUDA and on CPUs with native bf16 (AVX512-BF16/AMX), else fp32.",
    metavar="auto|fp32|bf16|fp16")]
CompileOpt = Annotated[str, typer.Option(
    "--compile", help="torch.compile the model; auto = on for CUDA, off on the CPU.",
    metavar="auto|on|off")]
FashionDirOpt = Annotated[Optional[Path], typer.Option(
    "--data-dir", help="Folder with the four Fashion-MNIST IDX files (else $FMTOOL_FASHION_DIR, "
    "else downloaded into the cache).", file_okay=False)]
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
    from fmtool import distributed, paths
    from fmtool.recipes import Recipe

    if recipe_name not in recipes:
        raise UserError(f"unknown recipe {recipe_name!r}; choose one of {', '.join(recipes)}")
    distributed.init_from_env()
    if not resume:  # every torchrun process must write to rank 0's run folder
        name = distributed.agree(name or paths.new_run_name())
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
    import torch

    from fmtool import console, distributed
    from fmtool.device import describe, precision_name, seed_everything
    from fmtool.train import Trainer, TrainingInterrupted

    device = start_device(device_name)
    say = console.stderr.print if distributed.is_main() else (lambda *a, **k: None)
    world = distributed.world_size()
    say(f"fmtool train {kind}: run [bold]{folder.name}[/] on {describe(device)}"
        + (f" x {world} processes (global batch {recipe.batch_size * world})" if world > 1 else ""))
    say(f"recipe {recipe.name}: " + ", ".join(
        f"{k}={v}" for k, v in recipe.to_dict().items() if k not in ("name", "description")))
    seed_everything(recipe.seed)
    task = build_task(device)
    compiled = _compile_choice(options.get("compile", "off"), device)
    say(f"precision {precision_name(task.precision)}, compile {'on' if compiled else 'off'}")
    # channels_last: measured +7% training on this project's CPU, and what tensor cores want.
    trainer = Trainer(task, recipe, folder, device, options=options, compile=compiled,
                      channels_last=True)
    if world > 1:  # weights are synchronised now; give each rank its own dropout masks
        torch.manual_seed(recipe.seed + distributed.rank())
    try:
        if resume:
            trainer.resume()
            say(f"resuming at epoch {trainer.state.epoch + 1}, batch {trainer.state.step + 1}")
        history = trainer.fit()
    except TrainingInterrupted:
        say(f"stopped; continue with: fmtool train {kind} --name {folder.name} --resume")
        raise typer.Exit(130)
    finally:
        distributed.shutdown()
    say(f"done: {len(history)} epochs; run folder {folder}")
    say(selection_summary(history, task.best_metric, task.best_mode))


def selection_summary(history: list[dict[str, Any]], metric: str, mode: str) -> str:
    """Which epoch best.pt holds and its test numbers; plus the report's measure (best test
    accuracy over all epochs), labelled, since it peeks at the test set."""
    scored = [r for r in history if not math.isnan(r[metric])]
    if not scored:
        return f"no epoch had a usable {metric} (the loss diverged?); best.pt was not written"
    pick = max if mode == "max" else min
    best = pick(scored, key=lambda r: r[metric])
    shown = ", ".join(f"{k} {v:.4f}" for k, v in best.items()
                      if k.startswith(("val_", "test_")) and isinstance(v, float))
    line = f"best.pt: epoch {best['epoch']} (selected by {metric}): {shown}"
    if metric != "test_acc" and "test_acc" in best:
        peak = max(history, key=lambda r: r["test_acc"])
        line += (f"\nthe report's measure, best test_acc over epochs: {peak['test_acc']:.4f} "
                 f"(epoch {peak['epoch']})")
    return line


def start_device(device_name: str) -> "torch.device":
    """The chosen device; under torchrun, this process's own GPU."""
    from fmtool import distributed
    from fmtool.device import choose_device

    return distributed.local_device(choose_device(device_name))


def _compile_choice(choice: str, device: "torch.device") -> bool:
    """`auto` compiles on CUDA, where it pays back its start-up time; CPU compiles are slow."""
    if choice not in ("auto", "on", "off"):
        raise UserError(f"--compile must be auto, on or off, not {choice!r}")
    return choice == "on" or (choice == "auto" and device.type == "cuda")
