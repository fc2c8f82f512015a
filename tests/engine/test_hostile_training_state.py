"""Hostile training state: a run whose weights turn NaN (best.pt keeps a finite model and the
run cannot be resumed), and damaged run.json, last.pt training state and metrics.jsonl on
--resume and eval; values given with --resume that would change the run, and a resume of a
run that has nothing left to do.

Refusals are checked by `final_error` (tests/helpers/refusals.py).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Callable

import pytest
import torch
from torch import nn

from fmtool import CNN
from fmtool.cli.app import app
from fmtool.cnn.recipes import PAPER as CNN_PAPER
from fmtool.cnn.recipes import STRONG as CNN_STRONG
from fmtool.engine.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from fmtool.engine.runs import read_metrics
from fmtool.engine.trainer import Trainer
from fmtool.engine.training import check_epochs
from fmtool.errors import UserError
from tests.helpers.refusals import final_error, runner

pytestmark = pytest.mark.usefixtures("one_thread")


# -- the training loop: NaN never becomes best.pt --------------------------------------------

class _DivergingTask:
    """A linear model whose loss turns NaN from the second epoch while its score keeps rising,
    as a CNN's accuracy can when NaN logits all pick one class."""

    kind, best_metric, best_mode, precision = "cnn", "score", "max", None

    def __init__(self, diverge_at: int = 1) -> None:
        self.model: nn.Module = nn.Linear(2, 1)
        self.epoch, self.diverge_at = 0, diverge_at

    def batches(self, epoch: int) -> list[torch.Tensor]:
        self.epoch = epoch
        return [torch.ones(4, 2), torch.ones(4, 2)]

    def step(self, model: nn.Module, batch: torch.Tensor):
        out = model(batch).sum()
        loss = out * (float("nan") if self.epoch >= self.diverge_at else 1.0)
        return loss, {"count": torch.tensor(float(len(batch)))}

    def summarize(self, sums):
        return {"train_loss": 0.0}

    def evaluate(self, model):
        return {"score": 0.5 + self.epoch / 10}

    def meta(self):
        return {"kind": "cnn", "recipe": {}}

    def after_epoch(self, run_dir, epoch):
        return None

    def status(self, sums):
        return ""


def test_a_diverged_epoch_never_replaces_best_pt_and_cannot_be_resumed(tmp_path: Path):
    recipe = CNN_PAPER.with_overrides(epochs=3, batch_size=4)
    run = tmp_path / "run"
    history = Trainer(_DivergingTask(), recipe, run, torch.device("cpu")).fit()
    assert [r["score"] for r in history] == [0.5, 0.6, 0.7]  # the score kept rising
    assert [r.get("diverged", False) for r in history] == [False, True, True]
    best = load_checkpoint(run / "best.pt")
    assert best.meta["epoch"] == 1
    assert all(torch.isfinite(t).all() for t in best.model.values())
    assert [r.get("diverged", False) for r in read_metrics(run)] == [False, True, True]

    again = Trainer(_DivergingTask(), recipe.with_overrides(epochs=4), run, torch.device("cpu"))
    with pytest.raises(UserError, match=r"last\.pt cannot be resumed \(weight \S+ holds NaN or "
                                        r"infinite values"):
        again.resume()


@pytest.mark.parametrize("mode,best,value,improved", [
    ("max", None, float("nan"), False), ("max", None, float("inf"), False),
    ("max", 0.5, float("inf"), False), ("max", 0.5, float("nan"), False),
    ("min", None, float("-inf"), False), ("min", 3.0, float("-inf"), False),
    ("min", 3.0, float("nan"), False), ("min", float("nan"), 2.0, True),
    ("max", float("inf"), 0.7, True), ("max", 0.5, 0.7, True), ("min", 3.0, 2.0, True),
    ("min", None, 5.0, True),
])
def test_only_finite_scores_improve(mode: str, best, value: float, improved: bool, tmp_path):
    task = _DivergingTask()
    task.best_mode = mode
    trainer = Trainer(task, CNN_PAPER.with_overrides(epochs=1, batch_size=4), tmp_path,
                      torch.device("cpu"))
    trainer.state.best = best
    assert trainer._improved(value) is improved


def test_the_summary_skips_diverged_epochs():
    from fmtool.engine.training import selection_summary

    history = [{"epoch": 1, "val_acc": 0.4}, {"epoch": 2, "val_acc": 0.9, "diverged": True},
               {"epoch": 3, "val_acc": float("inf")}]
    assert "epoch 1 " in selection_summary(history, "val_acc", "max")


# -- damaged run.json, last.pt and metrics.jsonl ------------------------------------------------

def _copy_run(cnn_run: dict, tmp_path: Path) -> tuple[dict[str, str], Path]:
    home = tmp_path / "home"
    shutil.copytree(cnn_run["home"], home)
    return {"FMTOOL_HOME": str(home)}, home / "data/runs/cnn/r"


def _edit_json(key: str, value: Any) -> Callable[[Path], None]:
    def change(run: Path) -> None:
        info = json.loads((run / "run.json").read_text())
        target = info
        *parents, last = key.split(".")
        for part in parents:
            target = target[part]
        if value is _DELETE:
            del target[last]
        else:
            target[last] = value
        (run / "run.json").write_text(json.dumps(info))
    return change


_DELETE = object()
RUN_JSON_CASES: dict[str, Callable[[Path], None]] = {
    "not JSON": lambda run: (run / "run.json").write_text('{"recipe": {"lr": 0.1,'),
    "a JSON list": lambda run: (run / "run.json").write_text("[1, 2, 3]"),
    "nested too deep": lambda run: (run / "run.json").write_text("[" * 100_000 + "]" * 100_000),
    "no recipe": _edit_json("recipe", _DELETE),
    "recipe is text": _edit_json("recipe", "paper"),
    "learning rate is text": _edit_json("recipe.lr", "fast"),
    "learning rate NaN": _edit_json("recipe.lr", float("nan")),
    "learning rate negative": _edit_json("recipe.lr", -0.1),
    "no batch size": _edit_json("recipe.batch_size", _DELETE),
    "batch size fractional": _edit_json("recipe.batch_size", 16.5),
    "warm-up 1": _edit_json("recipe.warmup", 1.0),
    "seed beyond 64 bits": _edit_json("recipe.seed", 2**70),
    "width huge": _edit_json("recipe.width", 1e6),
    "unknown optimizer": _edit_json("recipe.optimizer", "sgd"),
    "flip is a number": _edit_json("recipe.flip", 3),
    "options are a list": _edit_json("options", [1]),
    "limit negative": _edit_json("options.limit", -3),
    "limit is text": _edit_json("options.limit", "all"),
    "another kind": _edit_json("kind", "vae"),
}


@pytest.mark.parametrize("case", list(RUN_JSON_CASES))
def test_resume_refuses_a_damaged_run_json(case: str, cnn_run: dict, tmp_path: Path):
    env, run = _copy_run(cnn_run, tmp_path)
    RUN_JSON_CASES[case](run)
    result = runner.invoke(app, ["train", "cnn", "--name", "r", "--resume", "--epochs", "2",
                                 "--data-dir", str(cnn_run["data"])], env=env)
    line = final_error(result)
    assert f"{run / 'run.json'}" in line, (case, line)
    assert load_checkpoint(run / "last.pt").meta["epoch"] == 1


def _edit_state(change: Callable[[Checkpoint], None]) -> Callable[[Path], None]:
    def edit(run: Path) -> None:
        ckpt = load_checkpoint(run / "last.pt")
        change(ckpt)
        save_checkpoint(run / "last.pt", ckpt)
    return edit


LAST_PT_CASES: dict[str, Callable[[Path], None]] = {
    "history is not JSON": _edit_state(lambda c: c.train_state.update(history="[{")),
    "history of another length": _edit_state(lambda c: c.train_state.update(history="[]")),
    "history nested too deep": _edit_state(lambda c: c.train_state.update(
        history="[" * 100_000 + "]" * 100_000)),
    "epoch negative": _edit_state(lambda c: c.train_state.update(epoch=-1)),
    "epoch is text": _edit_state(lambda c: c.train_state.update(epoch="1")),
    "step beyond the epoch": _edit_state(lambda c: c.train_state.update(step=10**6)),
    "no optimizer": _edit_state(lambda c: c.train_state.pop("optimizer")),
    "optimizer is damaged": _edit_state(lambda c: c.train_state.update(optimizer={"x": 1})),
    "no random state": _edit_state(lambda c: c.train_state.pop("rng")),
    "best score is text": _edit_state(lambda c: c.train_state.update(best="high")),
    "training state is a list": _edit_state(lambda c: setattr(c, "train_state", [1])),
    "NaN weights": _edit_state(lambda c: c.model["output.weight"].fill_(float("nan"))),
    "integer weights": _edit_state(lambda c: c.model.update(
        {"output.weight": c.model["output.weight"].long()})),
}


@pytest.mark.parametrize("case", list(LAST_PT_CASES))
def test_resume_refuses_damaged_training_state(case: str, cnn_run: dict, tmp_path: Path):
    env, run = _copy_run(cnn_run, tmp_path)
    LAST_PT_CASES[case](run)
    result = runner.invoke(app, ["train", "cnn", "--name", "r", "--resume", "--epochs", "2",
                                 "--data-dir", str(cnn_run["data"])], env=env)
    line = final_error(result)
    assert line.startswith(f"error: {run / 'last.pt'} "), (case, line)


METRICS_CASES = {
    "not JSON": '{"epoch": 1, "test_acc": 0.5',
    "a list": "[1, 2, 3]",
    "a number": "42",
    "epoch is text": '{"epoch": "one", "test_acc": 0.5}',
    "no epoch": '{"test_acc": 0.5}',
    "epoch zero": '{"epoch": 0, "test_acc": 0.5}',
    "a value is a table": '{"epoch": 1, "test_acc": {"a": 1}}',
    "a value is text": '{"epoch": 1, "test_acc": "high"}',
    "nested too deep": "[" * 100_000 + "]" * 100_000,
    "binary garbage": "\x00\x01\x02\xff",
}


@pytest.mark.parametrize("case", list(METRICS_CASES))
def test_eval_refuses_a_damaged_metrics_file_in_one_line(case: str, cnn_run: dict,
                                                         tmp_path: Path):
    env, run = _copy_run(cnn_run, tmp_path)
    good = (run / "metrics.jsonl").read_text()
    (run / "metrics.jsonl").write_text(good + METRICS_CASES[case] + "\n")
    result = runner.invoke(app, ["eval", str(run), "--data-dir", str(cnn_run["data"]),
                                 "--device", "cpu"], env=env)
    line = final_error(result)
    assert f"{run / 'metrics.jsonl'}" in line and "line 2" in line, (case, line)




# -- what --resume is given ---------------------------------------------------------------------

def _files(run: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(run.iterdir())}


def test_resume_refuses_values_that_would_change_the_run_before_reading_any_data(
        cnn_run: dict, tmp_path: Path):
    env, run = _copy_run(cnn_run, tmp_path)
    before = _files(run)
    result = runner.invoke(app, ["train", "cnn", "--name", "r", "--resume", "--epochs", "2",
                                 "--lr", "0.01", "--limit", "50", "--precision", "bf16",
                                 "--data-dir", str(tmp_path / "not-read")], env=env)
    assert final_error(result) == (
        "error: --resume continues run r with the recipe and options it started with "
        "(lr 0.0005, limit none, precision fp32); drop --lr, --limit and --precision, or start "
        "a new run under another --name")
    assert _files(run) == before


def test_the_python_api_refuses_them_alike(cnn_run: dict, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch):
    env, run = _copy_run(cnn_run, tmp_path)
    monkeypatch.setenv("FMTOOL_HOME", env["FMTOOL_HOME"])
    with pytest.raises(UserError, match=r"^resume continues run r .* \(recipe paper\); drop "
                                        r"recipe, or start a new run under another name$"):
        CNN.train("strong", name="r", resume=True, data_dir=tmp_path / "not-read")


def test_resuming_a_finished_run_says_so_and_leaves_it_as_it_was(cnn_run: dict, tmp_path: Path):
    """Values equal to the run's own are harmless; a run that finished its epochs has nothing to
    resume, which is no error (a script may resume until the run is done)."""
    env, run = _copy_run(cnn_run, tmp_path)
    before = _files(run)
    result = runner.invoke(app, ["train", "cnn", "--name", "r", "--resume", "--recipe", "paper",
                                 "--lr", "5e-4", "--precision", "fp32", "--device", "cpu",
                                 "--data-dir", str(tmp_path / "not-read")], env=env)
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        f"run r already finished its 1 epoch; nothing to resume, its checkpoints are unchanged "
        f"(--epochs N trains it on to N epochs); run folder {run}"]
    assert _files(run) == before


def test_epochs_on_resume_may_extend_a_per_epoch_schedule_only():
    check_epochs("r", CNN_PAPER, 150, 100)  # StepLR: more epochs continue the same steps
    with pytest.raises(UserError, match=r"^run r uses the onecycle schedule, which is planned "
                                        r"for its 60 epochs; epochs cannot change on resume$"):
        check_epochs("r", CNN_STRONG, 80, 10)
    with pytest.raises(UserError, match=r"^run r has finished 100 epochs already; epochs 50 "
                                        r"would end it before that; give 100 or more$"):
        check_epochs("r", CNN_PAPER, 50, 100)
