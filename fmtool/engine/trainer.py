"""The one training loop both models use: progress, metrics, checkpoints, Ctrl-C and resume.

A model plugs in as a `Task` (what a batch is, how its loss is computed, how it is evaluated).
The loop owns everything else, so the CNN and the VAE behave the same from the terminal.

Resuming gives the same result as an uninterrupted run on the same device because every source
of randomness is either derived from (seed, epoch) (the order of the batches) or saved in the
checkpoint (the global RNG that drives dropout and sampling), and an interrupted epoch restarts
at the exact batch where it stopped.

On a GPU the loop never waits for the device within an epoch: the batches' indices go to the
device once per epoch, metric sums are added up there and read once at the epoch's end, the
optimiser step is fused, and with `cuda_graph` each full batch's forward and backward replay as
one CUDA graph (fmtool.engine.graphs). On the CPU it reads the running metrics as it goes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import torch
from torch import nn

from fmtool.engine import distributed, graphs, schedules
from fmtool.engine.checkpoint import Checkpoint, load_checkpoint, save_checkpoint, weights_problem
from fmtool.engine.feedback import SILENT, Feedback
from fmtool.engine.interrupt import StopRequest
from fmtool.engine.recipe import Recipe
from fmtool.engine.runs import BEST_CHECKPOINT, LAST_CHECKPOINT, run_lock, write_metrics, write_run_info
from fmtool.errors import Option, UserError


class Task(Protocol):
    """What the loop needs to know about one model and its data."""

    kind: str
    model: nn.Module  # the plain network: trained, evaluated and saved
    best_metric: str  # a key of the epoch record that picks best.pt
    best_mode: str  # "max" or "min"
    precision: torch.dtype | None  # autocast dtype of step() and evaluate(); None = fp32

    def batches(self, epoch: int) -> Sequence[Any]:
        """This epoch's batches, in an order fixed by (seed, epoch)."""

    def step(self, model: nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Loss to minimise of `model` (the task's own network, or the Trainer's compiled or
        DDP-wrapped view of it: the same parameters) on `batch`, and per-batch sums (must
        include 'count') for running metrics."""

    def summarize(self, sums: dict[str, float]) -> dict[str, float]:
        """Turns the epoch's sums into train metrics, e.g. {'train_loss': .., 'train_acc': ..}."""

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Held-out metrics of `model` (the weights or their EMA), e.g. {'test_acc': ..}."""

    def meta(self) -> dict[str, Any]:
        """What a checkpoint must carry to be used without the training code's arguments:
        at least its kind and recipe (the Trainer adds options, epoch and metrics)."""

    def after_epoch(self, run_dir: Path, epoch: int) -> None:
        """Optional per-epoch artefacts (figures, sample grids)."""

    def status(self, sums: dict[str, float]) -> str:
        """One short text of running metrics for the progress bar."""


class TrainingInterrupted(Exception):
    """Raised after Ctrl-C (SIGINT) or SIGTERM once a resumable checkpoint is safely on disk;
    `signal` is the one that asked to stop (the command exits 128 + it: 130 or 143)."""

    def __init__(self, run_dir: Path, signum: int = signal.SIGINT) -> None:
        super().__init__(run_dir)
        self.run_dir = run_dir
        self.signal = int(signum)


@dataclass
class TrainState:
    epoch: int = 0  # completed epochs
    step: int = 0  # completed batches of the current epoch
    sums: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    best: float | None = None
    elapsed: float = 0.0


class _StopFlag(StopRequest):
    """The first Ctrl-C or SIGTERM asks the loop to stop at the next batch boundary and save a
    resumable checkpoint; a second one aborts at once without saving (`Interrupted`: the
    command exits 130 or 143)."""

    def __init__(self, feedback: Feedback) -> None:
        super().__init__(feedback, "after this batch and saving a resumable checkpoint",
                         "Ctrl-C again to abort without saving")


@torch.no_grad()
def _all_finite(model: nn.Module) -> bool:
    """Whether every floating-point weight and buffer of `model` is finite (one host sync)."""
    tensors = [t for t in model.state_dict().values() if t.is_floating_point()]
    if not tensors:
        return True
    return bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all())


def _rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, torch.Tensor], device: torch.device) -> None:
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _compiled(module: nn.Module) -> nn.Module:
    """torch.compile, without the 'No CUDA runtime is found' warning inductor's C++ build
    prints on every CPU-only machine (it is not actionable there)."""
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    return torch.compile(module)


@dataclass
class Trainer:
    task: Task
    recipe: Recipe
    run_dir: Path
    device: torch.device
    options: dict[str, Any] = field(default_factory=dict)  # CLI choices a resume must reuse
    log_every: int = 20  # batches between progress updates
    # Asked at each batch and epoch end, besides Ctrl-C and SIGTERM: a time limit's deadline
    # (see engine.training.deadline_stop); tests use it to simulate Ctrl-C.
    should_stop: Callable[[], bool] | None = None
    channels_last: bool = False
    compile: bool = False
    cuda_graph: bool = False  # replay each full batch's step as a CUDA graph (engine.graphs)
    # Whether the progress updates read the running metrics. A read waits for the device to finish
    # what it was given: free on a CPU, a stall of the GPU's queue there, where the metric sums
    # stay on the device and are read once per epoch. None: on the CPU only.
    live_metrics: bool | None = None
    feedback: Feedback = SILENT  # progress bars and one line per epoch
    state: TrainState = field(default_factory=TrainState)

    def __post_init__(self) -> None:
        # self.model is the plain module (saved, evaluated); each step runs through the
        # DDP-wrapped and/or compiled view of the same parameters, which the task is handed.
        self.model = self.task.model.to(self.device)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self._eager_view = distributed.wrap(self.model, self.device)
        self._stepped_view = _compiled(self._eager_view) if self.compile else self._eager_view
        self.main = distributed.is_main()
        self.resumed = False  # a new run claims its folder; a resumed one continues it
        self.optimizer = schedules.make_optimizer(self.model, self.recipe,
                                                  fused=schedules.fused_optimizer(self.device))
        steps = len(distributed.shard_batches(list(self.task.batches(0)), self.recipe.batch_size))
        self.scheduler = schedules.make_schedule(self.optimizer, self.recipe, steps)
        self.per_batch_schedule = schedules.steps_per_batch(self.recipe)
        self.ema = (schedules.WeightEMA(self.model, self.recipe.ema_decay)
                    if self.recipe.ema_decay > 0 else None)
        # A task that autocasts to fp16 on a GPU needs loss scaling; bf16 and fp32 do not.
        fp16 = getattr(self.task, "precision", None) == torch.float16
        self.scaler = torch.amp.GradScaler(self.device.type,
                                           enabled=fp16 and self.device.type == "cuda")
        if self.live_metrics is None:
            self.live_metrics = self.device.type == "cpu"
        self._running: dict[str, torch.Tensor] = {}  # this epoch's metric sums, on the device
        reason = (graphs.why_not_graphed(self.device, self.task, compiled=self.compile)
                  if self.cuda_graph else None)
        if reason is not None:
            raise ValueError(reason)
        self._graphed = graphs.GraphedStep(self._forward_backward) if self.cuda_graph else None

    # -- checkpoints -------------------------------------------------------------------------
    @property
    def eval_model(self) -> nn.Module:
        """The weights that are evaluated and kept in best.pt: the EMA when the recipe has one."""
        return self.ema.model if self.ema is not None else self.model

    def _meta(self) -> dict[str, Any]:
        last = self.state.history[-1] if self.state.history else {}
        return {**self.task.meta(), "options": self.options, "epoch": self.state.epoch,
                "metrics": last}

    def _save_last(self) -> None:
        if not self.main:
            return
        s = self.state
        train_state = {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "epochs": self.recipe.epochs,
            "rng": _rng_state(self.device),
            "epoch": s.epoch, "step": s.step, "sums": dict(s.sums),
            "history": json.dumps(s.history), "best": s.best, "elapsed": s.elapsed,
        }
        save_checkpoint(self.run_dir / LAST_CHECKPOINT,
                        Checkpoint(self._meta(), self.model.state_dict(), train_state))

    def resume(self) -> None:
        """Restores model, optimiser, scheduler, RNG and progress from the run's last.pt."""
        path = self.run_dir / LAST_CHECKPOINT
        if not path.is_file():
            raise UserError("run {} has no checkpoint to resume; start it without {}",
                            self.run_dir.name, Option("resume"))
        ckpt = load_checkpoint(path, expect_kind=self.task.kind, map_location=self.device)
        if ckpt.train_state is None:
            raise UserError(f"{path} holds no training state; it cannot be resumed")
        ts = ckpt.train_state
        if not isinstance(ts, dict):
            raise UserError(f"{path} holds damaged training state; it cannot be resumed")
        problem = weights_problem(ckpt.model, self.model.state_dict())
        if problem is not None:
            raise UserError(f"{path} cannot be resumed ({problem}); its best.pt is kept, but "
                            "the run must start again under another name")
        # A changed --epochs is refused before this (`training.check_epochs`); here the
        # checkpoint and the recipe it is resumed with disagree, so one of them is not the run's.
        if self.per_batch_schedule and ts.get("epochs", self.recipe.epochs) != self.recipe.epochs:
            raise UserError(f"{path} was planned for {ts.get('epochs')} epochs of the "
                            f"{self.recipe.schedule} schedule, not {self.recipe.epochs}; it "
                            "cannot be resumed with this recipe")
        # Nothing in the file is trusted: the progress is checked before anything is restored,
        # and whatever torch refuses while restoring is one line too, not a traceback.
        try:
            state = self._saved_progress(ts)
            self.model.load_state_dict(ckpt.model)
            if self.ema is not None and ts.get("ema"):
                self.ema.load_state_dict(ts["ema"])
            self.optimizer.load_state_dict(ts["optimizer"])
            self.scheduler.load_state_dict(ts["scheduler"])
            if ts.get("scaler"):
                self.scaler.load_state_dict(ts["scaler"])
            _set_rng_state({k: v.cpu() for k, v in ts["rng"].items()}, self.device)
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError,
                RecursionError) as exc:
            reason = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else ""
            reason = f"{type(exc).__name__}: {reason}" if isinstance(exc, KeyError) else reason
            raise UserError(f"{path} holds damaged training state ({reason or type(exc).__name__}); "
                            "it cannot be resumed") from exc
        self.state = state
        self.resumed = True
        if distributed.is_distributed():  # mid-epoch state is per rank; restart the epoch
            self.state.step, self.state.sums = 0, {}

    def _saved_progress(self, ts: dict[str, Any]) -> TrainState:
        """The progress a last.pt records, if it is consistent (ValueError otherwise): whole
        epochs and batches within this run's plan, one history record per finished epoch."""
        def count(key: str, high: int | None = None) -> int:
            value = ts[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0 or (
                    high is not None and value > high):
                raise ValueError(f"its {key} is {str(value)[:20]}")
            return value

        def number(value: Any, what: str) -> float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"its {what} is {str(value)[:20]}")
            return float(value)

        steps = len(distributed.shard_batches(list(self.task.batches(0)), self.recipe.batch_size))
        epoch, step = count("epoch"), count("step", steps)
        history = json.loads(ts["history"])
        if not isinstance(history, list) or len(history) != epoch or not all(
                isinstance(r, dict) and r.get("epoch") == i for i, r in enumerate(history, 1)):
            raise ValueError(f"its history does not list epochs 1 to {epoch}")
        sums = {str(k): number(v, "running sums") for k, v in dict(ts["sums"]).items()}
        best = None if ts["best"] is None else number(ts["best"], "best score")
        elapsed = number(ts["elapsed"], "elapsed time")
        return TrainState(epoch=epoch, step=step, sums=sums, history=history, best=best,
                          elapsed=elapsed)

    # -- the loop ----------------------------------------------------------------------------
    def _improved(self, value: float) -> bool:
        """Whether `value` beats the best so far; NaN and infinity never do (an infinite loss
        or accuracy is a diverged model, and nothing could ever beat it afterwards)."""
        if not math.isfinite(value):
            return False
        best = self.state.best
        if best is None or not math.isfinite(best):
            return True
        return value > best if self.task.best_mode == "max" else value < best

    def _accumulate(self, sums: dict[str, torch.Tensor]) -> None:
        """Adds a batch's sums in place, into tensors that keep their place (a CUDA graph
        replays its additions into the same ones)."""
        for key, value in sums.items():
            value = value.detach().float()
            if key in self._running:
                self._running[key].add_(value)
            else:
                self._running[key] = value.clone()

    def _flush(self) -> None:
        """Moves the device-side sums into the state (a host sync) and sets them back to zero."""
        for key, value in self._running.items():
            self.state.sums[key] = self.state.sums.get(key, 0.0) + float(value)
            value.zero_()

    def fit(self) -> list[dict[str, Any]]:
        """Trains to recipe.epochs; returns the history. Raises TrainingInterrupted on Ctrl-C.

        Under torchrun only rank 0 locks the run, writes files and shows progress; Ctrl-C is
        left to torchrun there (ranks cannot agree on a batch to stop at without a collective
        per step), and --resume restarts the interrupted epoch.
        """
        single = not distributed.is_distributed()
        with contextlib.ExitStack() as stack:
            if self.main:
                stack.enter_context(run_lock(self.run_dir, new=not self.resumed))
                run_info = {"kind": self.task.kind, "recipe": self.recipe.to_dict(),
                            "options": self.options}
                write_run_info(self.run_dir, run_info)
                # A resumed run's metrics come from its checkpoint: epochs a kill cut off after
                # the metrics were written but before last.pt was are dropped here.
                write_metrics(self.run_dir, self.state.history)
            flag = stack.enter_context(_StopFlag(self.feedback)) if single else None
            self._flag = flag
            asked = self.should_stop or (lambda: False)
            stop = lambda: (flag is not None and flag.requested) or asked()  # noqa: E731
            with (self.feedback if self.main else SILENT).progress() as bars:
                epochs = bars.add_task("epochs", total=self.recipe.epochs,
                                       completed=self.state.epoch, status="")
                while self.state.epoch < self.recipe.epochs:
                    self._train_epoch(bars, stop)
                    best = "n/a" if self.state.best is None else f"{self.state.best:.4f}"
                    bars.update(epochs, completed=self.state.epoch,
                                status=f"best {self.task.best_metric} {best}")
                    if stop() and self.state.epoch < self.recipe.epochs:
                        raise self._interrupted()
        return self.state.history

    def evaluates(self, epoch: int) -> bool:
        """Whether epoch `epoch` (from 1) is scored on the held-out and test images: every epoch,
        or the recipe's last `evaluate_last` ones."""
        last = self.recipe.evaluate_last
        return not last or epoch > self.recipe.epochs - last

    def _interrupted(self) -> TrainingInterrupted:
        flag = getattr(self, "_flag", None)
        signum = flag.signal if flag is not None else None
        return TrainingInterrupted(self.run_dir, signum if signum is not None else signal.SIGINT)

    def train_step(self, batch: Any) -> None:
        """One optimiser step on one batch; its metric sums are added up on the device."""
        full = len(batch) == self.recipe.batch_size
        if self._graphed is not None and full:
            self._graphed(batch.to(self.device, non_blocking=True))  # the graph reads the device
        else:
            self._forward_backward(batch)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.per_batch_schedule:
            self.scheduler.step()
        if self.ema is not None:
            self.ema.update(self.model)

    def _forward_backward(self, batch: Any) -> None:
        """The batch's loss, gradients and metric sums, with no value read on the host (so that
        it can be captured as a CUDA graph)."""
        # A compiled model is specialised to the full batch size; an epoch's ragged last batch
        # steps eagerly on the same weights instead of paying for a second, dynamic compile.
        full = len(batch) == self.recipe.batch_size
        loss, sums = self.task.step(self._stepped_view if full else self._eager_view, batch)
        # A captured graph writes the gradients into tensors of its own on every replay; an eager
        # step after the capture (a ragged batch) zeroes those in place instead of dropping them.
        captured = self._graphed is not None and self._graphed.graph is not None
        self.optimizer.zero_grad(set_to_none=not captured)
        self.scaler.scale(loss).backward()
        self._accumulate(sums)

    def _on_device(self, batches: list[Any]) -> list[Any]:
        """The epoch's index batches copied to the device at once, not one small copy per step
        (each from the host's pageable memory)."""
        if self.device.type == "cpu" or not batches:
            return batches
        return list(torch.cat(batches).to(self.device).split([len(b) for b in batches]))

    def _train_epoch(self, bars: Any, stop: Callable[[], bool]) -> None:
        s = self.state
        batches = self._on_device(distributed.shard_batches(list(self.task.batches(s.epoch)),
                                                            self.recipe.batch_size))
        bar = bars.add_task(f"epoch {s.epoch + 1}", total=len(batches), completed=s.step,
                            status="")
        self.model.train()
        start, seen = time.perf_counter(), 0
        for index in range(s.step, len(batches)):
            self.train_step(batches[index])
            seen += len(batches[index])
            s.step = index + 1
            interrupted = stop()
            if s.step % self.log_every == 0 or s.step == len(batches) or interrupted:
                if self.live_metrics or s.step == len(batches) or interrupted:
                    self._flush()
                rate = seen / max(time.perf_counter() - start, 1e-9)
                running = f"{self.task.status(s.sums)}  " if s.sums else ""
                bars.update(bar, completed=s.step, status=f"{running}{rate:,.0f} img/s")
            if interrupted and s.step < len(batches):
                s.elapsed += time.perf_counter() - start
                self._save_last()
                raise self._interrupted()
        bars.remove_task(bar)
        train_seconds = time.perf_counter() - start
        epoch_lr = self.optimizer.param_groups[0]["lr"]
        if not self.per_batch_schedule:
            self.scheduler.step()
        record: dict[str, Any] = {"epoch": s.epoch + 1}
        record.update(self.task.summarize(distributed.all_reduce_sums(s.sums, self.device)))
        # A run stopped early (a time limit) scores its last epoch, so that it has a best.pt.
        if self.evaluates(s.epoch + 1) or stop():
            record.update(self.task.evaluate(self.eval_model))
        epoch_seconds = time.perf_counter() - start
        s.elapsed += epoch_seconds
        images = seen * distributed.world_size()
        record.update(lr=epoch_lr, seconds=round(epoch_seconds, 3),
                      images_per_s=round(images / max(train_seconds, 1e-9), 1))
        s.epoch, s.step, s.sums = s.epoch + 1, 0, {}
        s.history.append(record)
        # NaN weights can still score (a CNN whose logits are all NaN predicts class 0 and gets
        # that class's share right), so a model is only a candidate for best.pt while every
        # weight it would save is finite.
        finite = _all_finite(self.eval_model)
        if not finite:
            record["diverged"] = True
        scored = self.task.best_metric in record
        improved = finite and scored and self._improved(float(record[self.task.best_metric]))
        if improved:
            s.best = float(record[self.task.best_metric])
        # best.pt before last.pt: a kill between the two repeats this epoch on resume, which
        # rewrites the same best.pt; the other order could lose the best epoch for good.
        if improved and self.main:
            weights = self.ema.model if self.ema is not None else self.model
            save_checkpoint(self.run_dir / BEST_CHECKPOINT,
                            Checkpoint(self._meta(), weights.state_dict()))
        self._save_last()
        if not self.main:
            return
        write_metrics(self.run_dir, s.history)
        self.task.after_epoch(self.run_dir, s.epoch)
        self.feedback.note(f"epoch {s.epoch}/{self.recipe.epochs}  {self._epoch_line(record)}"
                           + ("  best" if improved else "")
                           + ("" if finite else "  the weights are NaN or infinite (training "
                              "diverged; a lower learning rate may help): not a best epoch"))

    def _epoch_line(self, record: dict[str, Any]) -> str:
        shown = [f"{k} {v:.4f}" for k, v in record.items()
                 if k not in ("epoch", "lr", "seconds", "images_per_s") and isinstance(v, float)]
        return "  ".join(shown) + f"  {record['seconds']:.0f}s {record['images_per_s']:.0f} img/s"

