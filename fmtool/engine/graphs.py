"""The training step as a CUDA graph: recorded once, replayed for every full batch.

At batch 64 the report's CNN is launch-bound on a large GPU: each of the step's ~150 kernels
(augmentation, forward, loss, backward, metric sums) runs for microseconds, and Python and the
driver take longer to launch them than the GPU takes to run them. A CUDA graph records those
kernels once and launches them as one; each replay reads the batch's indices from a fixed
buffer and writes the gradients and metric sums into fixed tensors.

What can be captured (a task says so with `capturable = True`): every full batch runs the same
kernels on tensors of the same shapes, every tensor is made on the device, and no value is read
on the host. Random numbers (dropout, augmentation) are drawn afresh on each replay. Three
things stay outside the graph: the optimiser step (its learning rate and Adam's betas change
with the schedule, and a graph would keep the values it saw; fused, it is a launch or two), the
weight EMA (its decay ramps up per step), and an epoch's ragged last batch (another shape).

Following PyTorch's recipe for whole-network capture, the first `WARMUP` full batches train
eagerly on a side stream (lazy initialisation, optimiser state and cuDNN's choices happen there,
not during capture), the next one is captured (which records without running) and replayed.
Every batch is trained on exactly once, so a graphed run follows the same schedule as an eager one.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from fmtool.choices import Switch
from fmtool.engine import distributed
from fmtool.engine.bounds import plain_text
from fmtool.errors import Option, UserError

WARMUP = 3  # eager full batches before the capture (PyTorch's example uses 3)


def why_not_graphed(device: torch.device, task: Any, compiled: bool = False) -> str | None:
    """Why `task`'s training step cannot run as a CUDA graph on `device` (compiled with
    torch.compile when `compiled`), or None if it can."""
    if compiled:  # first: said alike on every device
        return ("the step is compiled, and a compiled step is not captured as a CUDA graph "
                "(torch.compile makes graphs of its own)")
    if device.type != "cuda":
        return f"CUDA graphs need a CUDA device, and this run is on {device.type}"
    if not getattr(task, "capturable", False):
        return f"the {task.kind} training step is not written to be captured"
    if getattr(task, "precision", None) == torch.float16:
        return "fp16 needs a gradient scaler, which checks the gradients on the host; use bf16"
    if distributed.is_distributed():
        return "under torchrun, DistributedDataParallel exchanges gradients outside any graph"
    return None


def refuse_with_compile(choice: str, compile: str) -> None:
    """`cuda_graph` on and `compile` on together: one line (UserError), on any device, before
    any work. (`auto` graphing steps aside for a compile that was asked for; see `use_graph`.)"""
    if Switch.parse(choice, "cuda_graph").value == "on" and str(compile) == "on":
        raise UserError("{} on and {} on do not go together (a compiled step is not captured as "
                        "a CUDA graph); use {} off or {} off", Option("cuda_graph"),
                        Option("compile"), Option("compile"), Option("cuda_graph"))


def use_graph(choice: str, device: torch.device, task: Any, compile: str = "off") -> bool:
    """`auto`: graph the step wherever it can be (not when `compile` is on); `on`: graph it, or
    say why it cannot be; `off`: never."""
    refuse_with_compile(choice, compile)
    choice = Switch.parse(choice, "cuda_graph").value
    if choice == "off":
        return False
    reason = why_not_graphed(device, task, compiled=str(compile) == "on")
    if reason is not None and choice == "on":
        raise UserError("{} on: " + plain_text(reason) + "; use {} auto or off",
                        Option("cuda_graph"), Option("cuda_graph"))
    return reason is None


class GraphedStep:
    """Calls `step(batch)` (forward and backward; its results go into tensors it keeps, none
    is returned) eagerly `WARMUP` times, then captures it as a CUDA graph and replays that.
    Batches must all have the shape of the first; the caller steps other shapes eagerly."""

    def __init__(self, step: Callable[[torch.Tensor], None]) -> None:
        self.step = step
        self.graph: torch.cuda.CUDAGraph | None = None  # None until captured
        self._batch = torch.empty(0)  # the buffer every replay reads (made at the capture)
        self._warmups = 0
        self._side: torch.cuda.Stream | None = None

    def __call__(self, batch: torch.Tensor) -> None:
        if self.graph is not None:
            self._batch.copy_(batch, non_blocking=True)
            self.graph.replay()
        elif self._warmups < WARMUP:
            self._warm_up(batch)
        else:
            self._capture(batch)

    def _warm_up(self, batch: torch.Tensor) -> None:
        current = torch.cuda.current_stream()
        self._side = self._side or torch.cuda.Stream()
        self._side.wait_stream(current)  # after the optimiser step that came before
        with torch.cuda.stream(self._side):
            self.step(batch)
        current.wait_stream(self._side)
        self._warmups += 1

    def _capture(self, batch: torch.Tensor) -> None:
        self._batch = batch.clone()
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                self.step(self._batch)
        except RuntimeError as exc:  # a host read or a copy from the host inside the step
            reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else "no reason"
            raise UserError("the training step could not be captured as a CUDA graph ("
                            + plain_text(reason) + "); run again with {} off",
                            Option("cuda_graph")) from exc
        self.graph = graph
        graph.replay()  # capturing records the kernels without running them: this batch runs now
