"""`evaluate_last`: a recipe that scores the held-out and test images only in its last epochs
picks best.pt among those, draws its curves from them, and still scores a run cut short."""

from pathlib import Path

import pytest
import torch

from fmtool.cnn.recipes import RECIPES as CNN_RECIPES
from fmtool.cnn.task import CNNTask
from fmtool.data.fashion import load_from_dir
from fmtool.engine.checkpoint import load_checkpoint
from fmtool.engine.device import seed_everything
from fmtool.engine.runs import read_metrics
from fmtool.engine.trainer import Trainer, TrainingInterrupted
from fmtool.engine.training import selection_summary
from fmtool.errors import UserError
from fmtool.metrics import plots

CPU = torch.device("cpu")
RECIPE = CNN_RECIPES["cpu"].with_overrides(epochs=4, batch_size=32, val_size=40, evaluate_last=2)


def trainer(data_dir: Path, run_dir: Path, **kwargs) -> Trainer:
    seed_everything(RECIPE.seed)
    task = CNNTask(load_from_dir(data_dir), RECIPE, CPU, width=0.125, limit=400)
    return Trainer(task, RECIPE, run_dir, CPU, **kwargs)


def test_only_the_last_epochs_are_scored_and_best_pt_is_one_of_them(tiny_fashion: Path,
                                                                   tmp_path: Path):
    run = tmp_path / "run"
    history = trainer(tiny_fashion, run).fit()
    assert [("val_acc" in r, "test_acc" in r) for r in history] == [(False, False)] * 2 + [
        (True, True)] * 2
    assert all("train_loss" in r for r in history)
    assert read_metrics(run) == history
    best = load_checkpoint(run / "best.pt", expect_kind="cnn")
    assert best.meta["epoch"] in (3, 4)
    assert best.meta["metrics"]["val_acc"] == max(r["val_acc"] for r in history[2:])
    summary = selection_summary(history, "val_acc", "max")
    assert f"best.pt: epoch {best.meta['epoch']} (selected by val_acc)" in summary
    assert "final epoch 4: test_acc" in summary


def test_the_curves_draw_the_scored_epochs_only(tmp_path: Path):
    history = [{"epoch": 1, "train_acc": 0.5}, {"epoch": 2, "train_acc": 0.6, "test_acc": 0.7},
               {"epoch": 3, "train_acc": 0.7, "test_acc": 0.8}]
    path = plots.curves(history, [("train_acc", "train"), ("test_acc", "test")], "accuracy",
                        "Accuracy", tmp_path / "accuracy.png")
    assert path.stat().st_size > 0


def test_a_run_stopped_before_its_scored_epochs_scores_its_last_one(tiny_fashion: Path,
                                                                    tmp_path: Path):
    """A time limit (or Ctrl-C at an epoch's end) stops after epoch 1 of 4: that epoch is scored,
    so the run has a best.pt to use."""
    trained = trainer(tiny_fashion, tmp_path / "run")
    steps = len(trained.task.batches(0))
    trained.should_stop = lambda: trained.state.epoch >= 1 or trained.state.step == steps
    with pytest.raises(TrainingInterrupted):
        trained.fit()
    assert [("test_acc" in r) for r in trained.state.history] == [True]
    assert (tmp_path / "run" / "best.pt").is_file()


def test_evaluate_last_is_a_recipe_value_with_a_range():
    assert CNN_RECIPES["paper"].evaluate_last == 0  # the report scored every epoch
    with pytest.raises(UserError, match="evaluate_last must be an integer from 0"):
        RECIPE.with_overrides(evaluate_last=-1).check()
