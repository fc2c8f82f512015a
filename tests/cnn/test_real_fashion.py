"""On the real Fashion-MNIST copy in ../shared/data (skipped when absent): a short training run
learns well above chance, and `classify` on PNG files agrees with `eval` on the same images."""

import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from fmtool.cli.app import app
from fmtool.cnn.inference import load_classifier, predict_logits
from fmtool.data.fashion import load_from_dir, subset

runner = CliRunner()
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def real_run(shared_data: Path, tmp_path_factory) -> dict:
    home = tmp_path_factory.mktemp("real")
    env = {"FMTOOL_HOME": str(home), "FMTOOL_FASHION_DIR": str(shared_data / "fashion-mnist")}
    args = ["train", "cnn", "--name", "short", "--limit", "8000", "--test-limit", "1000",
            "--epochs", "2", "--width", "0.25", "--batch-size", "32", "--lr", "2e-3"]
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    return {"env": env, "run": home / "data" / "runs" / "cnn" / "short"}


def test_short_run_learns_well_above_chance(real_run: dict):
    history = [json.loads(line) for line in (real_run["run"] / "metrics.jsonl").read_text().splitlines()]
    assert history[-1]["test_acc"] > 0.55  # chance is 0.1; this run reached 0.675 in 30 s


def test_classify_on_png_files_agrees_with_eval(real_run: dict, shared_data: Path, tmp_path: Path):
    """1,000 test images saved as PNG mean the same to classify as to eval: the photo
    preprocessing leaves Fashion-MNIST's own pictures alone: every one gets eval's label."""
    data = load_from_dir(shared_data / "fashion-mnist")
    images, _ = subset(data.test_images, data.test_labels, 1000, seed=3)
    files = []
    for index, image in enumerate(images.numpy()):
        files.append(tmp_path / f"test_{index:04d}.png")
        Image.fromarray(image).save(files[-1])
    result = runner.invoke(app, ["classify", *map(str, files), "--json"], env=real_run["env"])
    assert result.exit_code == 0, result.output
    labels_from_classify = [r["predictions"][0]["label"] for r in json.loads(result.stdout)]

    model, config, _ = load_classifier(real_run["run"] / "best.pt", torch.device("cpu"))
    eval_predictions = predict_logits(model, images, config.image_size, torch.device("cpu"),
                                      tta_flip=config.tta_flip).argmax(1)  # as eval
    labels_from_eval = [config.class_names[i] for i in eval_predictions]
    assert len(labels_from_classify) == len(labels_from_eval) == 1000
    disagree = [i for i, (a, b) in enumerate(zip(labels_from_classify, labels_from_eval)) if a != b]
    assert disagree == []
