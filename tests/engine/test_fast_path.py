"""The GPU path, as far as a CPU can check it: a training step that reads nothing back from its
tensors, metric sums kept where they are made and read once per epoch, the fused optimiser, and
when the step may run as a CUDA graph."""

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from fmtool.cli.app import app
from fmtool.cli.options import flag
from fmtool.cnn.recipes import RECIPES
from fmtool.cnn.task import CNNTask
from fmtool.data.fashion import load_from_dir
from fmtool.engine import graphs, schedules
from fmtool.engine.device import seed_everything
from fmtool.engine.trainer import Trainer
from fmtool.errors import UserError

pytestmark = pytest.mark.usefixtures("one_thread")
CPU, CUDA = torch.device("cpu"), torch.device("cuda")  # a CUDA device object needs no GPU
HOST_READS = ("item", "tolist", "__float__", "__int__", "__bool__", "__index__")


def trainer(data: Path, run: Path, recipe_name: str = "paper", **kwargs) -> Trainer:
    recipe = RECIPES[recipe_name].with_overrides(epochs=2, batch_size=16, width=0.0625)
    seed_everything(recipe.seed)
    return Trainer(CNNTask(load_from_dir(data), recipe, CPU), recipe, run, CPU, **kwargs)


@pytest.mark.parametrize("recipe_name", ["paper", "strong"])
def test_a_training_step_reads_no_tensor_back_on_the_host(recipe_name: str, tiny_fashion: Path,
                                                          tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch):
    """What a GPU run does per step, done here on the CPU: fused optimiser, sums left on the
    device. Any read (item, float, bool, ...) would make a GPU wait; a CUDA graph refuses it."""
    monkeypatch.setattr(schedules, "fused_optimizer", lambda device: True)
    run = trainer(tiny_fashion, tmp_path / "run", recipe_name, live_metrics=False)
    assert run.optimizer.defaults["fused"] is True
    batches = run.task.batches(0)
    run.train_step(batches[0])  # the first step initialises the optimiser's state
    reads: list[str] = []
    for name in HOST_READS:
        original = getattr(torch.Tensor, name)
        monkeypatch.setattr(torch.Tensor, name, lambda self, *args, _name=name, _original=original,
                            **kwargs: reads.append(_name) or _original(self, *args, **kwargs))
    for batch in batches[1:4]:
        run.train_step(batch)
    monkeypatch.undo()
    assert reads == []
    assert set(run._running) == {"loss", "correct", "count"}
    assert all(isinstance(value, torch.Tensor) for value in run._running.values())
    assert float(run._running["count"]) == 4 * 16


def test_metrics_read_once_per_epoch_give_the_same_history(tiny_fashion: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch):
    flushes: list[int] = []
    original = Trainer._flush
    monkeypatch.setattr(Trainer, "_flush", lambda self: flushes.append(self.state.step) or original(self))
    live = trainer(tiny_fashion, tmp_path / "live", log_every=3)
    assert live.live_metrics is True  # the CPU's default: the progress bar shows them as it goes
    live_history = live.fit()
    assert len(flushes) > 2 * 2
    flushes.clear()
    once = trainer(tiny_fashion, tmp_path / "once", log_every=3, live_metrics=False)
    once_history = once.fit()
    steps = len(once.task.batches(0))
    assert flushes == [steps, steps]  # once, at each epoch's end

    def untimed(history: list[dict]) -> list[dict]:
        return [{k: v for k, v in r.items() if k not in ("seconds", "images_per_s")} for r in history]

    # The same sums, added in float32 on the device rather than partly in float64 on the host.
    assert untimed(once_history) == [pytest.approx(r, rel=1e-6) for r in untimed(live_history)]


def test_the_optimizer_is_fused_on_cuda_only():
    assert schedules.fused_optimizer(CUDA) is True and schedules.fused_optimizer(CPU) is False
    model = torch.nn.Linear(3, 2)
    for name, kind in (("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW)):
        recipe = RECIPES["paper"].with_overrides(optimizer=name)
        fused = schedules.make_optimizer(model, recipe, fused=True)
        plain = schedules.make_optimizer(model, recipe)
        assert type(fused) is kind and fused.defaults["fused"] is True and not plain.defaults["fused"]
        assert fused.defaults["lr"] == recipe.lr and fused.defaults["weight_decay"] == recipe.weight_decay


def test_which_steps_can_run_as_a_cuda_graph(tiny_fashion: Path):
    cnn = CNNTask(load_from_dir(tiny_fashion), RECIPES["paper"].with_overrides(width=0.0625), CPU)
    assert graphs.why_not_graphed(CUDA, cnn) is None
    assert "CUDA device" in graphs.why_not_graphed(CPU, cnn)
    cnn.precision = torch.float16
    assert "fp16" in graphs.why_not_graphed(CUDA, cnn)

    class EagerOnly:  # a task that does not say its step can be captured (the VAE's)
        kind, precision = "vae", None

    assert "not written to be captured" in graphs.why_not_graphed(CUDA, EagerOnly())
    assert graphs.use_graph("auto", CPU, cnn) is False and graphs.use_graph("off", CUDA, cnn) is False
    with pytest.raises(UserError) as refused:
        graphs.use_graph("on", CPU, cnn)
    assert refused.value.render(flag).startswith("--cuda-graph on: CUDA graphs need a CUDA device")
    with pytest.raises(ValueError, match="CUDA device"):  # the Trainer checks library callers too
        Trainer(cnn, RECIPES["paper"], Path("unused"), CPU, cuda_graph=True)


def test_a_compiled_step_is_never_graphed_and_both_asked_for_is_one_line(tiny_fashion: Path,
                                                                          tmp_path: Path):
    cnn = CNNTask(load_from_dir(tiny_fashion), RECIPES["paper"].with_overrides(width=0.0625), CPU)
    assert "compiled" in graphs.why_not_graphed(CUDA, cnn, compiled=True)
    assert graphs.use_graph("auto", CUDA, cnn, compile="on") is False  # auto steps aside
    assert graphs.use_graph("auto", CUDA, cnn, compile="auto") is True
    expected = ("--cuda-graph on and --compile on do not go together (a compiled step is not "
                "captured as a CUDA graph); use --compile off or --cuda-graph off")
    for device in (CPU, CUDA):  # said alike wherever it runs, before the device is looked at
        with pytest.raises(UserError) as refused:
            graphs.use_graph("on", device, cnn, compile="on")
        assert refused.value.render(flag) == expected
    with pytest.raises(ValueError, match="compiled"):
        Trainer(cnn, RECIPES["paper"], Path("unused"), CPU, compile=True, cuda_graph=True)
    home = tmp_path / "home"
    result = CliRunner().invoke(app, ["train", "cnn", "--device", "cpu", "--compile", "on",
                                      "--cuda-graph", "on", "--epochs", "1", "--width", "0.0625",
                                      "--data-dir", str(tiny_fashion), "--name", "both"],
                                env={"FMTOOL_HOME": str(home)})
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1] == f"error: {expected}"
    assert not (home / "data" / "runs" / "cnn" / "both").exists()


def test_cuda_graph_on_without_a_gpu_is_one_line(tiny_fashion: Path):
    result = CliRunner().invoke(app, ["train", "cnn", "--device", "cpu", "--cuda-graph", "on",
                                      "--epochs", "1", "--width", "0.0625",
                                      "--data-dir", str(tiny_fashion)])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: --cuda-graph on: CUDA graphs need a CUDA device, and this run is on cpu; use "
        "--cuda-graph auto or off")


# == on a CUDA GPU only: the graphed step against eager training =================================

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="needs a CUDA GPU: only there does the step run as a CUDA graph")


def _cuda_trainer(data: Path, run: Path, cuda_graph: bool, **overrides) -> Trainer:
    """200 training images in batches of 16: 12 full batches (3 eager warm-ups, a capture, 8
    replays) and a ragged last batch of 8, which steps eagerly after the capture; fp32."""
    recipe = RECIPES["paper"].with_overrides(batch_size=16, width=0.0625, **overrides)
    seed_everything(recipe.seed)
    task = CNNTask(load_from_dir(data), recipe, CUDA, precision=None)
    assert len(task.batches(0)) == 13 and len(task.batches(0)[-1]) == 8
    return Trainer(task, recipe, run, CUDA, cuda_graph=cuda_graph, channels_last=True,
                   live_metrics=False)


@needs_cuda
def test_a_graphed_epoch_trains_as_an_eager_one_ragged_last_batch_included(tiny_fashion: Path,
                                                                          tmp_path: Path):
    # No dropout and deterministic cuDNN: both runs then compute the same numbers, step by step.
    # (Dropout draws on the device in both, afresh on each replay, but need not draw alike.)
    flags = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        runs = {}
        for graphed in (False, True):
            trainer = _cuda_trainer(tiny_fashion, tmp_path / f"graphed-{graphed}", graphed,
                                    epochs=1, variant="text", dropout=0.0)
            history = trainer.fit()
            runs[graphed] = (history, {k: v.detach().float().cpu()
                                       for k, v in trainer.model.state_dict().items()})
            if graphed:
                assert trainer._graphed is not None and trainer._graphed.graph is not None
    finally:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = flags
    (eager_history, eager), (graph_history, graphed_weights) = runs[False], runs[True]
    assert graph_history[0]["train_loss"] == pytest.approx(eager_history[0]["train_loss"], rel=1e-4)
    assert graph_history[0]["train_acc"] == pytest.approx(eager_history[0]["train_acc"], abs=0.01)
    assert eager.keys() == graphed_weights.keys()
    for name, value in eager.items():
        torch.testing.assert_close(graphed_weights[name], value, rtol=1e-4, atol=1e-5, msg=name)


@needs_cuda
def test_a_graphed_epoch_never_waits_for_the_gpu(tiny_fashion: Path, tmp_path: Path):
    """Every step of an epoch after the capture (replays and the ragged batch) under
    torch.cuda.set_sync_debug_mode("error"): any host read or synchronising copy raises."""
    trainer = _cuda_trainer(tiny_fashion, tmp_path / "run", True, epochs=2)
    trainer.model.train()
    for batch in trainer._on_device(trainer.task.batches(0)):  # warm-up and capture
        trainer.train_step(batch)
    assert trainer._graphed.graph is not None
    batches = trainer._on_device(trainer.task.batches(1))  # the epoch's one copy, as fit makes it
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for batch in batches:
            trainer.train_step(batch)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    trainer._flush()
    assert trainer.state.sums["count"] == 2 * 200
