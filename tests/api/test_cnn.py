"""fmtool.CNN from Python: what the commands print is what the calls return, and the library
stays a library (no terminal libraries loaded, nothing printed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from fmtool import CNN, CNNConfig, UserError
from fmtool.cli.app import app
from fmtool.cnn.recipes import PAPER
from fmtool.data.fashion import load_from_dir
from fmtool.metrics import float32_value
from tests.helpers.checkpoints import TINY_WIDTH, save_cnn
from tests.helpers.fashion import synthetic_fashion
from tests.helpers.paths import REPO

pytestmark = pytest.mark.usefixtures("one_thread")
runner = CliRunner()
TINY_TRAINING = dict(width=TINY_WIDTH, batch_size=16, val_size=0, device="cpu", precision="fp32")


def run(*args: object):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def pictures(tmp_path: Path) -> list[Path]:
    """Two Fashion-MNIST look-alikes as PNG, a photo-like picture and a file that is no image."""
    data = load_from_dir(synthetic_fashion(tmp_path / "fashion", train=20, test=10))
    files = []
    for index in (0, 1):
        files.append(tmp_path / f"item{index}.png")
        Image.fromarray(data.test_images[index].numpy()).save(files[-1])
    photo = np.full((120, 90, 3), 235, np.uint8)
    photo[20:100, 25:65] = (40, 60, 120)  # a dark item on a light floor
    files.append(tmp_path / "photo.jpg")
    Image.fromarray(photo).save(files[-1])
    files.append(tmp_path / "broken.png")
    files[-1].write_bytes(b"not an image")
    return files


def test_import_fmtool_loads_neither_torch_nor_a_terminal_library():
    code = ("import sys, fmtool; "
            "print(sorted(m for m in ('typer', 'click', 'rich', 'torch') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=REPO, check=True)
    assert result.stdout == "[]\n" and result.stderr == ""


def test_loading_classifying_evaluating_and_training_print_nothing_and_load_no_terminal_library(
        tmp_path: Path, pictures: list[Path]):
    data = synthetic_fashion(tmp_path / "data", train=64, test=20)
    code = f"""
import sys
import numpy as np
from fmtool import CNN
cnn = CNN.load("builtin", device="cpu")
cnn.classify({[str(p) for p in pictures]!r} + [np.zeros((28, 28), np.uint8)])
cnn.evaluate(limit=20, data_dir={str(data)!r})
CNN.train("paper", epochs=1, width=0.0625, batch_size=16, val_size=0, data_dir={str(data)!r},
          device="cpu", precision="fp32", name="quiet")
print(sorted(m for m in ("typer", "click", "rich") if m in sys.modules))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                            env={"FMTOOL_HOME": str(tmp_path / "home"), "PATH": ""})
    assert result.returncode == 0, result.stderr
    assert result.stdout == "[]\n" and result.stderr == ""


def test_classify_returns_what_the_command_prints(pictures: list[Path]):
    printed = run("classify", *pictures, "--checkpoint", "builtin", "--top-k", "3", "--json",
                  "--device", "cpu")
    assert printed.exit_code == 1  # the broken file
    results = CNN.load("builtin", device="cpu").classify(pictures, top_k=3)
    assert [result.to_dict() for result in results] == json.loads(printed.stdout)
    assert [result.path for result in results] == pictures
    assert results[-1].error is not None and results[-1].label is None
    assert results[0].label == results[0].predictions[0][0] and len(results[0].predictions) == 3


def test_a_picture_in_memory_gets_the_answer_its_file_gets(pictures: list[Path]):
    cnn = CNN.load("builtin", device="cpu")
    from_file = cnn.classify(pictures[0], top_k=10)[0]
    picture = Image.open(pictures[0])
    array = np.array(picture)
    for same in (picture, array, array.astype(np.float32) / 255, torch.from_numpy(array),
                 array[:, :, None]):
        (result,) = cnn.classify([same], top_k=10)
        assert result.path is None
        assert [label for label, _ in result.predictions] == [label for label, _ in from_file.predictions]
        assert [p for _, p in result.predictions] == pytest.approx([p for _, p in from_file.predictions])


@pytest.mark.parametrize("picture, error", [
    (np.zeros((0, 0)), "an empty picture (0x0 pixels)"),
    (np.zeros((28, 0, 3), np.uint8), "an empty picture (0x28 pixels)"),
    (Image.new("L", (0, 5)), "an empty picture (0x5 pixels)"),
    (np.zeros((2, 3, 4, 5), np.uint8), "an array picture must be HxW, HxWx3 or HxWx4, got shape (2, 3, 4, 5)"),
    (np.zeros((8, 8, 2), np.uint8), "an array picture must be HxW, HxWx3 or HxWx4, got shape (8, 8, 2)"),
    (np.zeros((8, 8), np.int32), "an array picture must be uint8 (0..255) or float (0..1), got int32"),
    (np.full((8, 8), np.nan, np.float32), "an array picture holds NaN or infinite values"),
    (torch.full((8, 8), 255.0), "a float picture's values must be 0 to 1, got 255 to 255; divide "
                                "0..255 values by 255"),
])
def test_a_picture_that_cannot_be_one_gets_its_error_and_never_stops_the_others(
        pictures: list[Path], picture: object, error: str):
    good = pictures[0]
    results = CNN.load("builtin", device="cpu").classify([good, picture, good])
    assert [r.error for r in results] == [None, error, None]
    assert results[0].label is not None and results[2].label == results[0].label
    assert results[1].path is None and results[1].label is None


def test_what_is_no_picture_at_all_is_the_calls_mistake():
    with pytest.raises(UserError, match="cannot read a picture from a int"):
        CNN.load("builtin", device="cpu").classify([42])


def test_evaluate_returns_what_eval_prints(tmp_path: Path, tiny_fashion: Path):
    checkpoint = save_cnn(tmp_path / "tiny.pt")
    printed = run("eval", checkpoint, "--data-dir", tiny_fashion, "--limit", "60", "--json",
                  "--device", "cpu", "--out", tmp_path / "figures")
    assert printed.exit_code == 0, printed.output
    expected = json.loads(printed.stdout)
    expected.pop("figures")
    report = CNN.load(checkpoint, device="cpu").evaluate(60, data_dir=tiny_fashion)
    assert report.to_dict() == expected
    assert report.images == 60 and sum(map(sum, report.confusion)) == 60
    assert set(report.per_class) == set(report.class_names)
    right = [report.confusion[i][i] for i in range(len(report.class_names))]
    assert report.accuracy == sum(right) / 60  # exactly, as a fraction of the images
    assert report.per_class["Trouser"] == right[1] / sum(report.confusion[1])


def test_project_returns_what_the_command_prints_and_draws_only_when_asked(tmp_path: Path,
                                                                          tiny_fashion: Path):
    checkpoint = save_cnn(tmp_path / "tiny.pt")
    figure = tmp_path / "map.png"
    printed = run("project", "--checkpoint", checkpoint, "--layer", "conv9,output", "--method",
                  "pca", "--per-class", "4", "--data-dir", tiny_fashion, "--out", figure, "--json")
    assert printed.exit_code == 0, printed.output
    cnn = CNN.load(checkpoint, device="cpu")
    both = cnn.project(["conv9", "output"], method="pca", per_class=4, data_dir=tiny_fashion)
    expected = json.loads(printed.stdout)["layers"]
    assert [{**p.scores(), "seconds": 0} for p in both] == [{**row, "seconds": 0} for row in expected]
    one = cnn.project("output", method="pca", per_class=4, data_dir=tiny_fashion)
    assert one.points.shape == (40, 2) and one.labels.shape == (40,)
    assert np.array_equal(one.points, both[1].points) and one.figure is None
    # computed in float32, given with float32's digits and no more
    assert one.silhouette == float32_value(one.silhouette)
    assert one.explained_variance == float32_value(one.explained_variance)
    with pytest.raises(UserError, match="already exist"):
        cnn.project("output", method="pca", per_class=4, data_dir=tiny_fashion, save=figure)
    saved = cnn.project("output", method="pca", per_class=4, data_dir=tiny_fashion, save=figure,
                        force=True)
    assert saved.figure == figure and saved.csv == figure.with_suffix(".csv")


def test_train_makes_the_run_train_cnn_makes_resumes_it_and_reports_progress(tiny_fashion: Path,
                                                                            fmtool_home: Path):
    heard: list[tuple] = []
    cnn = CNN.train("paper", epochs=1, data_dir=tiny_fashion, name="api", limit=64,
                    feedback=lambda *event: heard.append(event), **TINY_TRAINING)
    run_dir = fmtool_home / "data" / "runs" / "cnn" / "api"
    assert cnn.checkpoint == run_dir / "best.pt" and cnn.meta["epoch"] == 1
    assert cnn.meta["data"]["train_images"] == 64 and cnn.config.width == TINY_WIDTH
    assert json.loads((run_dir / "run.json").read_text())["options"]["limit"] == 64
    notes = [text for text, done, total in heard if done is None]
    assert notes[0].startswith("fmtool train cnn: run api") and notes[1].startswith("recipe paper:")
    assert not any(note.startswith("val_size") for note in notes)  # val_size 0: nothing held out
    held = []
    CNN.train("paper", epochs=1, data_dir=tiny_fashion, name="held", limit=64,
              feedback=lambda *event: held.append(event), **{**TINY_TRAINING, "val_size": 5000})
    assert ("val_size 5000 is more than a tenth of the 64 training images: 6 are held out to "
            "pick the best epoch", None, None) in held
    assert ("epochs", 1, 1) in heard  # the epochs bar, full
    resumed = CNN.train(name="api", resume=True, epochs=2, data_dir=tiny_fashion, device="cpu")
    assert resumed.meta["epoch"] in (1, 2) and len(resumed.meta["recipe"]) > 0
    history = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert len(history) == 2


@pytest.mark.parametrize("overrides, message", [
    ({"epochs": 0}, "epochs must be an integer from 1"),
    ({"depth": 12}, "'depth' is not a value of the cnn recipe"),
    ({"precision": "fp8"}, "unknown precision 'fp8'"),
    ({"limit": -1}, "limit must be an integer of at least 1, got -1"),
    ({"test_limit": 2.5}, "test_limit must be an integer of at least 1, got 2.5"),
])
def test_train_refuses_before_any_work(overrides: dict, message: str, tiny_fashion: Path):
    with pytest.raises(UserError, match=f"^{message}"):
        CNN.train("paper", data_dir=tiny_fashion, **{**TINY_TRAINING, **overrides})


def test_a_config_builds_an_untrained_model_and_lists_its_layers():
    cnn = CNN.from_config(CNNConfig(width=TINY_WIDTH))
    assert cnn.checkpoint is None and cnn.layers()["conv9"] == (32, 8, 8)
    assert CNN.from_config().config == CNNConfig.from_recipe(PAPER)


def test_load_names_what_is_wrong():
    with pytest.raises(UserError, match="does not exist"):
        CNN.load("no-such-model.pt")
