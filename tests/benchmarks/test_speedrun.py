"""benchmarks/speedrun.py end to end on tiny data: each seed is a whole `fmtool train cnn`, its
row is what that run's best.pt (picked on held-out images) records, and the mean is over seeds."""

import json
from pathlib import Path

import pytest

from benchmarks.speedrun import main, table
from fmtool.engine.checkpoint import load_checkpoint
from fmtool.engine.runs import read_metrics

TINY = ["--limit", "200", "--epochs", "2", "--width", "0.125", "--batch-size", "32",
        "--evaluate-last", "2"]


def test_two_tiny_seeds_give_two_rows_and_their_mean(tiny_fashion: Path,
                                                      capsys: pytest.CaptureFixture):
    main(["--seeds", "2", "--data-dir", str(tiny_fashion), "--json", "--", *TINY])
    report = json.loads(capsys.readouterr().out)
    runs = report["runs"]
    assert [r["seed"] for r in runs] == [6, 7] and report["recipe"] == "cpu"
    for row in runs:
        folder = Path(row["run"])
        history = read_metrics(folder)
        best = load_checkpoint(folder / "best.pt", expect_kind="cnn").meta
        assert best["recipe"]["seed"] == row["seed"] and best["recipe"]["epochs"] == 2
        picked = max(history, key=lambda r: r["val_acc"])  # on held-out images, not the test set
        assert row["best_epoch"] == picked["epoch"] and row["test_acc"] == picked["test_acc"]
        assert row["wall_s"] > 0 and row["images_per_s"] > 0 and row["epochs"] == 2
    assert report["mean_test_acc"] == pytest.approx(sum(r["test_acc"] for r in runs) / 2)
    assert report["cpu"] and "bf16" in report["bf16"]


def test_the_table_names_the_cpu_and_says_whether_the_mean_reaches_the_report():
    rows = [{"seed": s, "wall_s": 600.0 + s, "images_per_s": 1000.0, "best_epoch": 14,
             "epochs": 14, "val_acc": 0.95, "test_acc": acc, "run": "x"}
            for s, acc in ((6, 0.9420), (7, 0.9418))]
    text = table(rows, "cpu")
    assert text.splitlines()[0].startswith("recipe cpu on ")
    assert "| mean ± sd | 10.1 ± 0.0 min |" in text
    assert "94.19 ± 0.01%" in text and text.endswith("reaches the report's 94.17% (9,417 of 10,000)")
    assert table([{**rows[0], "test_acc": 0.9416}], "cpu").splitlines()[-1].startswith(
        "mean test accuracy 94.16% falls short")


def test_a_failing_run_is_one_message_and_a_non_zero_exit(tiny_fashion: Path):
    with pytest.raises(SystemExit, match="seed 6 failed"):
        main(["--seeds", "1", "--data-dir", str(tiny_fashion), "--", "--epochs", "0"])
