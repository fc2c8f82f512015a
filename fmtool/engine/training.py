"""A training run from start to end, for any model: the recipe and run folder chosen, the device
and precision set up, the task built, fitted (or resumed), and how it ended said.

`fmtool train` and `CNN.train` / `VAE.train` take this same road, so a run started from Python
and one started from the terminal are the same run. Everything the person at the terminal is
told goes through a `Feedback`; a stop on Ctrl-C or SIGTERM surfaces as `TrainingInterrupted`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from fmtool.engine import distributed, runs, schedules
from fmtool.engine.feedback import SILENT, Feedback
from fmtool.engine.recipe import Recipe
from fmtool.engine.run_options import RunOptions
from fmtool.engine.trainer import Task
from fmtool.errors import Option, UserError

# What the report's recipes would cost on two CPU cores, for the line that says which recipe a
# plain `fmtool train` chose: the full-width CNN trains at 30-75 images/s there (15-30 min an
# epoch); the VAE's `cpu` recipe takes about a minute an epoch at 64 px, and 224 px is 12x the
# pixels, so each of Table 3's 1,000 epochs would take ten minutes or more.
PAPER_ON_A_CPU = {"cnn": "more than a day (15-30 min an epoch, 100 epochs)",
                  "vae": "a week or more (1,000 epochs at 224 px)"}


@dataclass(frozen=True)
class RunPlan:
    """What a run will do, settled before any data is read: its folder, recipe and options."""

    kind: str
    folder: Path
    recipe: Recipe
    options: RunOptions
    resume: bool
    finished_epochs: int = 0  # epochs a resumed run had finished (its last.pt's)

    @property
    def nothing_to_do(self) -> bool:
        """Whether a resumed run already finished every epoch of its recipe."""
        return self.resume and self.finished_epochs >= self.recipe.epochs


def default_recipe_name(kind: str, device_name: str, feedback: Feedback = SILENT) -> str:
    """The report's recipe where it is meant to run (a CUDA GPU), the `cpu` recipe elsewhere; one
    note says which and how to force the other."""
    on_cuda = device_name in ("auto", "cuda") and torch.cuda.is_available()
    if on_cuda:
        feedback.note("recipe paper (the report's, on this CUDA GPU); --recipe cpu for the "
                      "small CPU recipe")
        return "paper"
    feedback.note(f"recipe cpu (no CUDA GPU in use); --recipe paper gives the report's recipe "
                  f"exactly, {PAPER_ON_A_CPU[kind]} on a 2-core CPU")
    return "cpu"


def plan_run(kind: str, recipes: Mapping[str, Recipe], recipe_name: str | None, name: str | None,
             resume: bool, overrides: Mapping[str, Any], options: RunOptions,
             device_name: str = "auto", feedback: Feedback = SILENT) -> RunPlan:
    """The run folder, recipe and options of a training run.

    A new run takes the named recipe (by default the one that fits the machine) with the
    overrides; a resumed run takes its own recipe and options back from its run.json. A value
    given with `resume` that differs from the run's is refused (`refuse_changes`) rather than
    dropped; only `epochs` may change, to extend a run on a per-epoch schedule."""
    from fmtool.engine.graphs import refuse_with_compile

    # Before any other work: choices that cannot be honoured together are one line.
    refuse_with_compile(options.cuda_graph, options.compile)
    options.check()
    named = recipe_name is not None
    if recipe_name is None:
        recipe_name = "paper" if resume else default_recipe_name(kind, device_name, feedback)
    if recipe_name not in recipes:
        raise UserError(f"unknown recipe {recipe_name!r}; choose one of {', '.join(recipes)}")
    unknown = [key for key in overrides if key not in recipes[recipe_name].to_dict()]
    if unknown:
        raise UserError(f"{unknown[0]!r} is not a value of the {kind} recipe; its values are "
                        f"{', '.join(recipes[recipe_name].to_dict())}")
    distributed.init_from_env()
    if not resume:  # every torchrun process must write to rank 0's run folder
        name = distributed.agree(runs.new_run_name() if name is None else name)
    folder = runs.training_run_dir(kind, name, resume)
    if not resume:  # each value was checked as it was parsed; check how they fit together
        recipe = recipes[recipe_name].with_overrides(**overrides).check()
        return RunPlan(kind, folder, recipe, options, resume)
    info = runs.read_run_info(folder, kind)
    # Runs from before the recipe split kept latent_dim and val_fraction among the options.
    saved = {**info["options"], **info["recipe"]}
    where = f"{folder / runs.RUN_FILE} is damaged: "
    stored = type(recipes[recipe_name]).from_dict(saved, where)
    stored_options = type(options).from_dict(info["options"], where)
    refuse_changes(folder.name, stored, stored_options, recipe_name if named else None,
                   overrides, options)
    finished = _finished_epochs(folder, kind)
    recipe = stored.with_overrides(epochs=overrides.get("epochs")).check()
    check_epochs(folder.name, stored, recipe.epochs, finished)
    return RunPlan(kind, folder, recipe, stored_options, resume, finished)


def refuse_changes(run: str, recipe: Recipe, options: RunOptions, recipe_name: str | None,
                   overrides: Mapping[str, Any], given: RunOptions) -> None:
    """A UserError naming every value given to resume run `run` that differs from the run's own
    (its `recipe` and `options`, from run.json): the run continues as it started, so such a
    value would otherwise be dropped without a word. Values equal to the run's are harmless, an
    option left at its default is not given, and `epochs` is `check_epochs`' to judge."""
    changed: list[tuple[str, Any]] = []
    if recipe_name is not None and recipe_name != recipe.name:
        changed.append(("recipe", recipe.name))
    for key, value in overrides.items():
        if value is None or key == "epochs":
            continue
        if getattr(recipe.with_overrides(**{key: value}), key) != getattr(recipe, key):
            changed.append((key, getattr(recipe, key)))
    default = type(given)()
    for key, value in given.to_dict().items():
        if value != getattr(default, key) and value != getattr(options, key):
            changed.append((key, getattr(options, key)))
    if not changed:
        return
    listed = " and ".join(filter(None, [", ".join(["{}"] * (len(changed) - 1)), "{}"]))
    theirs = ", ".join(f"{key} {_shown(value)}" for key, value in changed)
    raise UserError("{} continues run {} with the recipe and options it started with ({}); "
                    f"drop {listed}, or start a new run under another {{}}", Option("resume"),
                    run, theirs, *[Option(key) for key, _ in changed], Option("name"))


def check_epochs(run: str, recipe: Recipe, epochs: int, finished: int) -> None:
    """Refuses an `epochs` for resuming run `run` that its schedule or progress cannot take: a
    per-batch schedule (onecycle, cosine) is planned for the run's epoch count, and a run cannot
    end before the epochs it has finished."""
    if epochs != recipe.epochs and schedules.steps_per_batch(recipe):
        raise UserError("run {} uses the {} schedule, which is planned for its {}; {} cannot "
                        "change on resume", run, recipe.schedule, _epochs(recipe.epochs),
                        Option("epochs"))
    if epochs < finished:
        raise UserError("run {} has finished {} epochs already; {} {} would end it before "
                        "that; give {} or more", run, finished, Option("epochs"), epochs,
                        finished)


def _epochs(count: int) -> str:
    return f"{count} epoch" if count == 1 else f"{count} epochs"


def _shown(value: Any) -> str:
    return "none" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def _finished_epochs(folder: Path, kind: str) -> int:
    """The epochs a run's last.pt records as finished; 0 where its metadata does not say (the
    resume itself then reads the training state and says what is wrong with it)."""
    from fmtool.engine.checkpoint import load_checkpoint

    epoch = load_checkpoint(folder / runs.LAST_CHECKPOINT, expect_kind=kind).meta.get("epoch")
    return epoch if isinstance(epoch, int) and not isinstance(epoch, bool) and epoch > 0 else 0


def run_training(plan: RunPlan, device_name: str, build_task: Callable[[torch.device], Task],
                 feedback: Feedback = SILENT,
                 deadline: float | None = None) -> list[dict[str, Any]]:
    """Seeds, builds the task, fits (or resumes) and says which epoch best.pt holds; returns the
    history. Raises `TrainingInterrupted` after Ctrl-C or SIGTERM, once last.pt is safe. With a
    `deadline` (a `time.monotonic()` time) the run ends early where `deadline_stop` says, as a
    finished run: resumable, and its history says how far it got."""
    from fmtool.engine.device import choose_precision, describe, precision_name, seed_everything
    from fmtool.engine.graphs import use_graph
    from fmtool.engine.trainer import Trainer, TrainingInterrupted

    recipe, options = plan.recipe, plan.options
    if not distributed.is_main():
        feedback = SILENT
    if plan.nothing_to_do:  # said before any data is read; the run's files stay as they are
        distributed.shutdown()
        feedback.note(f"run {plan.folder.name} already finished its {_epochs(recipe.epochs)}; "
                      f"nothing to resume, its checkpoints are unchanged"
                      + ("" if schedules.steps_per_batch(recipe) else
                         " (--epochs N trains it on to N epochs)")
                      + f"; run folder {plan.folder}")
        return runs.read_metrics(plan.folder)
    device = start_device(device_name)
    world = distributed.world_size()
    feedback.note(f"fmtool train {plan.kind}: run {plan.folder.name} on {describe(device)}"
                  + (f" x {world} processes (global batch {recipe.batch_size * world})"
                     if world > 1 else ""))
    feedback.note(f"recipe {recipe.name}: {recipe.summary()}")
    seed_everything(recipe.seed)
    task = build_task(device)
    graphed = use_graph(options.cuda_graph, device, task, options.compile)
    compiled = compile_choice(options.compile, device, graphed)
    feedback.note(f"precision {precision_name(choose_precision(options.precision, device))}, "
                  f"compile {'on' if compiled else 'off'}" + (", CUDA graph on" if graphed else ""))
    # channels_last: measured +7% training on this project's CPU, and what tensor cores want.
    trainer = Trainer(task, recipe, plan.folder, device, options=options.to_dict(),
                      compile=compiled, cuda_graph=graphed, channels_last=True, feedback=feedback)
    if world > 1:  # weights are synchronised now; give each rank its own dropout masks
        torch.manual_seed(recipe.seed + distributed.rank())
    timed_out = deadline_stop(trainer, deadline) if deadline is not None else None
    trainer.should_stop = timed_out
    try:
        if plan.resume:
            trainer.resume()
            feedback.note(f"resuming at epoch {trainer.state.epoch + 1}, "
                          f"batch {trainer.state.step + 1}")
        history = trainer.fit()
    except TrainingInterrupted:
        if timed_out is None or not timed_out.fired:
            raise
        history = trainer.state.history
        feedback.note(f"time limit: stopped after epoch {trainer.state.epoch} of {recipe.epochs}"
                      + (f" and {trainer.state.step} batches" if trainer.state.step else ""))
    except BaseException:
        distributed.shutdown()
        raise
    # Rank 0 writes best.pt and last.pt after the last collective: the other ranks wait for it
    # before they read the run folder.
    distributed.barrier()
    distributed.shutdown()
    feedback.note(f"done: {_epochs(len(history))}; run folder {plan.folder}")
    for line in selection_summary(history, task.best_metric, task.best_mode).splitlines():
        feedback.note(line)  # a note is one line: the terminal's note escapes a newline
    return history


class _DeadlineStop:
    """See `deadline_stop`; `fired` says whether it stopped the run."""

    def __init__(self, trainer: Any, deadline: float, clock: Callable[[], float]) -> None:
        self.trainer, self.deadline, self.clock = trainer, deadline, clock
        self.last = clock()
        self.fired = False

    def __call__(self) -> bool:
        now = self.clock()
        if self.trainer.state.step:  # within an epoch
            self.fired = now > self.deadline
        else:
            took, self.last = now - self.last, now
            self.fired = now + took > self.deadline
        return self.fired


def deadline_stop(trainer: Any, deadline: float,
                  clock: Callable[[], float] = time.monotonic) -> _DeadlineStop:
    """A Trainer's `should_stop` for a deadline (a `clock` time): at an epoch's end, whether one
    more epoch as long as the last (evaluation and checkpoints included) would end past it;
    within an epoch, whether it has passed. Make it just before `fit`: the first epoch is timed
    from then."""
    return _DeadlineStop(trainer, deadline, clock)


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


def start_device(device_name: str) -> torch.device:
    """The chosen device; under torchrun, this process's own GPU."""
    from fmtool.engine.device import choose_device

    return distributed.local_device(choose_device(device_name))


def compile_choice(choice: str, device: torch.device, graphed: bool) -> bool:
    """`auto` compiles on CUDA, where it pays back its start-up time (CPU compiles are slow),
    unless the step runs as a CUDA graph: the graph already removes the launch overhead that
    fusing kernels would cut, without a compile of a minute or more per run."""
    return choice == "on" or (choice == "auto" and device.type == "cuda" and not graphed)
