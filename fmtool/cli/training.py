"""What `train cnn` and `train vae` share: choosing the run folder and recipe, then the run.

Like the rest of cli/, torch is imported inside the functions, never at module import.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import typer

from fmtool.cli import output
from fmtool.errors import UserError

if TYPE_CHECKING:
    import torch

    from fmtool.engine.recipe import Recipe
    from fmtool.engine.trainer import Task


# What the report's recipes would cost on two CPU cores, for the line that says which recipe a
# plain `fmtool train` chose: the full-width CNN trains at 30-75 images/s there (15-30 min an
# epoch); the VAE's `cpu` recipe takes about a minute an epoch at 64 px, and 224 px is 12x the
# pixels, so each of Table 3's 1,000 epochs would take ten minutes or more.
PAPER_ON_A_CPU = {"cnn": "more than a day (15-30 min an epoch, 100 epochs)",
                  "vae": "a week or more (1,000 epochs at 224 px)"}


def default_recipe_name(kind: str, device_name: str) -> str:
    """The report's recipe where it is meant to run (a CUDA GPU), the `cpu` recipe elsewhere; one
    line on stderr says which and how to force the other."""
    import torch

    on_cuda = device_name in ("auto", "cuda") and torch.cuda.is_available()
    if on_cuda:
        output.TERMINAL.note("recipe paper (the report's, on this CUDA GPU); --recipe cpu for the "
                             "small CPU recipe")
        return "paper"
    output.TERMINAL.note(f"recipe cpu (no CUDA GPU in use); --recipe paper gives the report's "
                         f"recipe exactly, {PAPER_ON_A_CPU[kind]} on a 2-core CPU")
    return "cpu"


def choose_recipe(kind: str, recipes: dict[str, "Recipe"], recipe_name: str | None,
                  name: str | None, resume: bool, overrides: dict[str, Any],
                  options: dict[str, Any], device_name: str = "auto",
                  ) -> tuple[Path, "Recipe", dict[str, Any]]:
    """The run folder, recipe and options of a `train` command.

    A new run takes the named recipe (by default the one that fits the machine) with the
    command line's overrides; `--resume` takes the run's own recipe and options back from its
    run.json (only `--epochs` may extend it).
    """
    from fmtool.engine import distributed, runs
    from fmtool.engine.graphs import refuse_with_compile

    # Before any other work: choices that cannot be honoured together are one line.
    refuse_with_compile(options.get("cuda_graph", "off"), options.get("compile", "off"))
    if recipe_name is None:
        recipe_name = "paper" if resume else default_recipe_name(kind, device_name)
    if recipe_name not in recipes:
        raise UserError(f"unknown recipe {recipe_name!r}; choose one of {', '.join(recipes)}")
    distributed.init_from_env()
    if not resume:  # every torchrun process must write to rank 0's run folder
        name = distributed.agree(runs.new_run_name() if name is None else name)
    folder = runs.training_run_dir(kind, name, resume)
    if not resume:  # each value was checked as it was parsed; check how they fit together
        return folder, recipes[recipe_name].with_overrides(**overrides).check(), options
    info = runs.read_run_info(folder, kind)
    recipe_class = type(recipes[recipe_name])
    # Runs from before the recipe split kept latent_dim and val_fraction among the options.
    saved = {**info["options"], **info["recipe"]}
    where = f"{folder / runs.RUN_FILE} is damaged: "
    recipe = recipe_class.from_dict(saved, where).with_overrides(epochs=overrides.get("epochs"))
    _check_saved_options(info["options"], options, where)
    return folder, recipe.check(), info["options"]


def _check_saved_options(saved: dict[str, Any], fresh: dict[str, Any], where: str) -> None:
    """The run's own options (what the command line would have given): limits are counts,
    the rest words or paths; anything else means the file was damaged or edited."""
    for key in fresh:
        value = saved.get(key)
        if key.endswith("limit"):
            good = value is None or (isinstance(value, int) and not isinstance(value, bool)
                                     and value >= 1)
        else:
            good = value is None or isinstance(value, str)
        if not good:
            raise UserError(f"{where}its option {key} is {str(value)[:40]!r}")


def run_training(kind: str, recipe: "Recipe", options: dict[str, Any], folder: Path,
                 device_name: str, resume: bool,
                 build_task: Callable[["torch.device"], "Task"]) -> None:
    """Seed, build the task, fit (or resume), and say which epoch best.pt holds."""
    import torch

    from fmtool.engine import distributed
    from fmtool.engine.device import describe, precision_name, seed_everything
    from fmtool.engine.feedback import SILENT
    from fmtool.engine.graphs import use_graph
    from fmtool.engine.trainer import Trainer, TrainingInterrupted

    device = start_device(device_name)
    feedback = output.TERMINAL if distributed.is_main() else SILENT
    world = distributed.world_size()
    feedback.note(f"fmtool train {kind}: run {folder.name} on {describe(device)}"
                  + (f" x {world} processes (global batch {recipe.batch_size * world})"
                     if world > 1 else ""))
    feedback.note(f"recipe {recipe.name}: {recipe.summary()}")
    seed_everything(recipe.seed)
    task = build_task(device)
    graphed = use_graph(options.get("cuda_graph", "off"), device, task,
                        options.get("compile", "off"))
    compiled = _compile_choice(options.get("compile", "off"), device, graphed)
    feedback.note(f"precision {precision_name(task.precision)}, compile {'on' if compiled else 'off'}"
                  + (", CUDA graph on" if graphed else ""))
    # channels_last: measured +7% training on this project's CPU, and what tensor cores want.
    trainer = Trainer(task, recipe, folder, device, options=options, compile=compiled,
                      cuda_graph=graphed, channels_last=True, feedback=feedback)
    if world > 1:  # weights are synchronised now; give each rank its own dropout masks
        torch.manual_seed(recipe.seed + distributed.rank())
    try:
        if resume:
            trainer.resume()
            feedback.note(f"resuming at epoch {trainer.state.epoch + 1}, "
                          f"batch {trainer.state.step + 1}")
        history = trainer.fit()
    except TrainingInterrupted as stopped:  # exit 128 + the signal: 130 (Ctrl-C), 143 (SIGTERM)
        feedback.note(f"stopped; continue with: fmtool train {kind} --name {folder.name} --resume")
        raise typer.Exit(128 + stopped.signal) from None
    finally:
        distributed.shutdown()
    feedback.note(f"done: {len(history)} epochs; run folder {folder}")
    for line in selection_summary(history, task.best_metric, task.best_mode).splitlines():
        feedback.note(line)  # a note is one line: the terminal's note escapes a newline


def selection_summary(history: list[dict[str, Any]], metric: str, mode: str) -> str:
    """How the run ended, one line each: which epoch best.pt holds and its numbers; for a model
    with a test accuracy, the final epoch's (nothing selected) and, labelled, the report's own
    measure: the best test accuracy over the epochs, which chooses the epoch on the test set."""
    def usable(record: dict[str, Any], key: str) -> bool:
        value = record.get(key)
        return isinstance(value, (int, float)) and math.isfinite(value)

    # The epochs the Trainer could pick: a finite score from finite weights (see Trainer).
    scored = [r for r in history if usable(r, metric) and not r.get("diverged")]
    if not scored:
        lines = [f"no epoch had a usable {metric} (the loss diverged?); best.pt was not written"]
    else:
        pick = max if mode == "max" else min
        best = pick(scored, key=lambda r: r[metric])
        shown = ", ".join(f"{k} {v:.4f}" for k, v in best.items()
                          if k.startswith(("val_", "test_")) and isinstance(v, float))
        on_test = " on the test set, as the report did" if metric.startswith("test_") else ""
        lines = [f"best.pt: epoch {best['epoch']} (selected by {metric}{on_test}): {shown}"]
    tested = [r for r in history if usable(r, "test_acc")]
    if tested:
        final, peak = history[-1], max(tested, key=lambda r: r["test_acc"])
        lines += [f"final epoch {final['epoch']}: test_acc {final.get('test_acc', math.nan):.4f} "
                  "(no selection)",
                  f"the report's measure, best test_acc over epochs (chosen on the test set, as "
                  f"the report did): {peak['test_acc']:.4f} (epoch {peak['epoch']})"]
    return "\n".join(lines)


def start_device(device_name: str) -> "torch.device":
    """The chosen device; under torchrun, this process's own GPU."""
    from fmtool.engine import distributed
    from fmtool.engine.device import choose_device

    return distributed.local_device(choose_device(device_name))


def _compile_choice(choice: str, device: "torch.device", graphed: bool) -> bool:
    """`auto` compiles on CUDA, where it pays back its start-up time (CPU compiles are slow),
    unless the step runs as a CUDA graph: the graph already removes the launch overhead that
    fusing kernels would cut, without a compile of a minute or more per run."""
    return choice == "on" or (choice == "auto" and device.type == "cuda" and not graphed)
