"""`--recipe paper` trains as the report did (every training image, the author's network, the
best test accuracy over the epochs) and says which numbers are which; `--val-size N` still
selects honestly on held-out images."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fmtool.cli.app import app
from fmtool.engine.checkpoint import load_checkpoint
from fmtool.engine.paths import runs_dir

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("one_thread")
TINY = ["--recipe", "paper", "--epochs", "2", "--width", "0.0625", "--batch-size", "32",
        "--lr", "2e-3", "--device", "cpu", "--precision", "fp32"]


def train(data: Path, name: str, *extra: str) -> tuple[list[str], list[dict], Path]:
    """Trains through the command line: its stderr lines, the run's metrics and folder."""
    result = runner.invoke(app, ["train", "cnn", *TINY, "--data-dir", str(data), "--name", name,
                                 *extra])
    assert result.exit_code == 0, result.output
    run = runs_dir("cnn") / name
    history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return result.stderr.splitlines(), history, run


def test_the_paper_recipe_trains_on_every_image_and_reports_final_and_best_test_accuracy(
        tiny_fashion: Path):
    lines, history, run = train(tiny_fashion, "paper")
    best = load_checkpoint(run / "best.pt").meta
    assert best["config"]["variant"] == "code"
    assert (best["data"]["train_images"], best["data"]["val_images"]) == (200, 0)
    assert all("val_acc" not in record for record in history)
    peak = max(history, key=lambda r: r["test_acc"])
    assert best["epoch"] == peak["epoch"]
    assert lines[-3].startswith(f"best.pt: epoch {peak['epoch']} (selected by test_acc on the "
                                "test set, as the report did)")
    assert lines[-2] == f"final epoch 2: test_acc {history[-1]['test_acc']:.4f} (no selection)"
    assert lines[-1] == ("the report's measure, best test_acc over epochs (chosen on the test "
                         f"set, as the report did): {peak['test_acc']:.4f} (epoch {peak['epoch']})")


def test_with_held_out_images_best_pt_is_chosen_on_them(tiny_fashion: Path):
    lines, history, run = train(tiny_fashion, "held", "--val-size", "20", "--variant", "text")
    best = load_checkpoint(run / "best.pt").meta
    assert best["config"]["variant"] == "text"
    assert (best["data"]["train_images"], best["data"]["val_images"]) == (180, 20)
    picked = max(history, key=lambda r: r["val_acc"])
    assert best["epoch"] == picked["epoch"]
    assert lines[-3].startswith(f"best.pt: epoch {picked['epoch']} (selected by val_acc): ")
    assert lines[-2].startswith("final epoch 2: test_acc ")
    assert lines[-1].startswith("the report's measure, best test_acc over epochs")
