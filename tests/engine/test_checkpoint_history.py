"""A checkpoint's history: its run folder's metrics.jsonl, else the history a bundled model
carries, so `fmtool eval` draws the curves of either."""

import json
from pathlib import Path

from typer.testing import CliRunner

from fmtool.cli.app import app
from fmtool.engine.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from fmtool.engine.runs import checkpoint_history, write_metrics
from tests.helpers.checkpoints import save_cnn

HISTORY = [{"epoch": 1, "train_loss": 1.0, "train_acc": 0.6, "test_loss": 0.9, "test_acc": 0.7},
           {"epoch": 2, "train_loss": 0.8, "train_acc": 0.7, "test_loss": 0.7, "test_acc": 0.8}]


def carrying(path: Path, history: object) -> Path:
    """A checkpoint as tools/bundle ships one: its history in its metadata, no run folder."""
    save_cnn(path)
    stored = load_checkpoint(path)
    save_checkpoint(path, Checkpoint({**stored.meta, "history": history}, stored.model))
    return path


def test_the_run_folders_metrics_come_first(tmp_path: Path):
    path = carrying(tmp_path / "run" / "best.pt", HISTORY)
    write_metrics(tmp_path / "run", HISTORY[:1])
    assert checkpoint_history(path, load_checkpoint(path).meta) == HISTORY[:1]


def test_a_shipped_model_brings_its_own_history(tmp_path: Path):
    path = carrying(tmp_path / "weights" / "cnn.pt", HISTORY)
    assert checkpoint_history(path, load_checkpoint(path).meta) == HISTORY


def test_a_stored_history_that_is_not_epoch_records_is_none(tmp_path: Path):
    for damaged in ("epochs", [{"epoch": 0}], [{"epoch": 1, "loss": "low"}], []):
        path = carrying(tmp_path / "cnn.pt", damaged)
        assert checkpoint_history(path, load_checkpoint(path).meta) == []


def test_eval_draws_the_curves_of_a_model_that_carries_its_history(tiny_fashion: Path,
                                                                   tmp_path: Path):
    path = carrying(tmp_path / "weights" / "cnn.pt", HISTORY)
    result = CliRunner().invoke(app, ["eval", str(path), "--data-dir", str(tiny_fashion),
                                      "--out", str(tmp_path / "figures"), "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)["figures"]
    assert set(figures) == {"loss_curve", "accuracy_curve", "confusion_matrix"}
    assert all(Path(p).stat().st_size > 0 for p in figures.values())


def test_eval_of_a_model_without_history_draws_the_confusion_matrix_only(tiny_fashion: Path,
                                                                         tmp_path: Path):
    path = save_cnn(tmp_path / "elsewhere" / "cnn.pt")
    result = CliRunner().invoke(app, ["eval", str(path), "--data-dir", str(tiny_fashion),
                                      "--out", str(tmp_path / "figures"), "--json"])
    assert result.exit_code == 0, result.output
    assert set(json.loads(result.stdout)["figures"]) == {"confusion_matrix"}
