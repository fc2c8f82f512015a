"""The CNN that ships inside fmtool: package data with a model card whose figures are true,
used by every CNN command when there is no run yet, or by name (`--checkpoint builtin`)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from fmtool.cli.app import app
from fmtool.engine.bundled import bundled_checkpoint
from fmtool.engine.checkpoint import load_checkpoint
from tests.conftest import REPO, synthetic_fashion

runner = CliRunner()
BUNDLED_CNN = bundled_checkpoint("cnn")


def card() -> dict:
    return load_checkpoint(BUNDLED_CNN, expect_kind="cnn").meta["card"]


def test_the_bundled_cnn_is_a_small_checkpoint_with_a_card():
    assert BUNDLED_CNN is not None and BUNDLED_CNN.parent.name == "weights"
    assert BUNDLED_CNN.stat().st_size <= 3 * 1024 * 1024
    checkpoint = load_checkpoint(BUNDLED_CNN, expect_kind="cnn")  # weights_only: no code runs
    assert checkpoint.train_state is None
    assert card()["command"].startswith("fmtool train cnn ")
    assert {"test_accuracy", "val_accuracy", "photo_accuracy"} <= set(card()["metrics"])


def test_its_test_accuracy_is_the_one_on_its_card(shared_data: Path):
    """All 10,000 test images, as `fmtool eval` measures them: the card is to be trusted."""
    from fmtool.cnn.evaluate import evaluate_checkpoint

    report = evaluate_checkpoint(BUNDLED_CNN, torch.device("cpu"), shared_data / "fashion-mnist")
    assert report["images"] == 10_000
    assert abs(report["accuracy"] - card()["metrics"]["test_accuracy"]) <= 1e-4


def test_its_photo_accuracy_is_the_one_on_its_card_and_in_the_readme(shared_data: Path):
    from benchmarks.bench_photos import score_photos

    report = score_photos(BUNDLED_CNN, shared_data / "clothing-photos")
    assert report["photos"] == 200
    assert abs(report["accuracy"] - card()["metrics"]["photo_accuracy"]) <= 1e-6
    readme = (REPO / "README.md").read_text()
    assert f"{report['correct']} of the 200 photos" in readme


def test_the_readme_table_names_the_file_and_its_sha256():
    import hashlib

    digest = hashlib.sha256(BUNDLED_CNN.read_bytes()).hexdigest()
    readme = (REPO / "README.md").read_text()
    assert digest in readme
    accuracy = card()["metrics"]["test_accuracy"]
    assert re.search(rf"\b{accuracy * 100:.2f}%", readme)


@pytest.fixture
def shirt_photo(tmp_path: Path) -> Path:
    picture = np.full((90, 120, 3), 235, np.uint8)
    picture[15:80, 40:80] = (40, 40, 60)  # a dark block on a light wall
    path = tmp_path / "photo.png"
    Image.fromarray(picture).save(path)
    return path


@pytest.mark.parametrize("command", ["classify", "eval", "project"])
def test_a_fresh_install_uses_the_bundled_model_and_says_so(command: str, tmp_path: Path,
                                                          shirt_photo: Path):
    data = synthetic_fashion(tmp_path / "fashion", train=20, test=60)
    args = {"classify": ["classify", str(shirt_photo)],
            "eval": ["eval", "--data-dir", str(data)],
            "project": ["project", "--method", "pca", "--per-class", "3", "--data-dir", str(data)]}
    result = runner.invoke(app, args[command])
    assert result.exit_code == 0, result.output
    assert f"using the bundled CNN model (no CNN run yet): {BUNDLED_CNN}" in result.stderr
    assert not [p for p in BUNDLED_CNN.parent.iterdir() if p.suffix != ".pt" and p.name != "__pycache__"]


def test_builtin_names_the_bundled_model_even_when_there_are_runs(tmp_path: Path,
                                                                  shirt_photo: Path):
    data = synthetic_fashion(tmp_path / "fashion")
    trained = runner.invoke(app, ["train", "cnn", "--data-dir", str(data), "--epochs", "1",
                                  "--width", "0.125", "--device", "cpu", "--name", "mine"])
    assert trained.exit_code == 0, trained.output
    mine = runner.invoke(app, ["classify", str(shirt_photo)])
    assert "using the latest CNN run" in mine.stderr
    builtin = runner.invoke(app, ["classify", str(shirt_photo), "--checkpoint", "builtin"])
    assert builtin.exit_code == 0 and "using the bundled CNN model" in builtin.stderr


def test_a_built_wheel_carries_the_bundled_model(tmp_path: Path):
    """The weights travel inside the wheel as package data, byte for byte."""
    import subprocess
    import sys
    import zipfile

    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--quiet", "--wheel-dir", str(tmp_path), str(REPO)], check=True,
                   capture_output=True)
    (wheel,) = tmp_path.glob("fmtool-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        assert archive.read("fmtool/weights/cnn.pt") == BUNDLED_CNN.read_bytes()
