"""Hostile values: option values out of range, NaN or infinite, refused at the command line with
their range and before any work; run names that are not usable folder names; data sets with a
zero dimension, images of the wrong size, face folders that give one image.

Refusals are checked by `final_error` (tests/helpers/refusals.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from fmtool.cli.app import app
from fmtool.cnn.recipes import PAPER as CNN_PAPER
from fmtool.data.fashion import load_from_dir
from fmtool.engine.recipe import MAX_SEED
from fmtool.engine.runs import check_run_name
from fmtool.errors import UserError
from fmtool.vae.recipes import PAPER as VAE_PAPER
from tests.helpers.faces import write_faces
from tests.helpers.fashion import synthetic_fashion, write_idx
from tests.helpers.refusals import TINY_CNN, final_error, runner

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("faces")
    write_faces(folder, people=1, per_person=3, size=64)
    return folder


# == 6. option values ============================================================================

CNN_OPTION_CASES = [
    (["--lr", "0"], "--lr must be a number in (0, 10]"),
    (["--lr", "nan"], "--lr must be a number in (0, 10], got nan"),
    (["--lr", "inf"], "--lr must be"),
    (["--lr", "-1e-3"], "--lr must be"),
    (["--lr", "11"], "--lr must be"),
    (["--lr", "fast"], "--lr must be a number in (0, 10], got 'fast'"),
    (["--weight-decay", "nan"], "--weight-decay must be a number in [0, 1]"),
    (["--weight-decay", "-inf"], "--weight-decay must be"),
    (["--weight-decay", "5"], "--weight-decay must be"),
    (["--warmup", "1.0", "--schedule", "onecycle"], "--warmup must be a number in [0, 1)"),
    (["--warmup", "nan"], "--warmup must be"),
    (["--warmup", "-0.1"], "--warmup must be"),
    (["--ema-decay", "1"], "--ema-decay must be a number in [0, 1)"),
    (["--ema-decay", "nan"], "--ema-decay must be"),
    (["--gamma", "0"], "--gamma must be a number in (0, 1]"),
    (["--gamma", "inf"], "--gamma must be"),
    (["--seed", "-1"], f"--seed must be an integer from 0 to {MAX_SEED}"),
    (["--seed", str(2**63)], "--seed must be"),
    (["--seed", str(2**64)], "--seed must be"),
    (["--seed", "1.5"], "--seed must be"),
    (["--epochs", "0"], "--epochs must be an integer from 1"),
    (["--epochs", str(10**20)], "--epochs must be"),
    (["--batch-size", str(10**20)], "--batch-size must be"),
    (["--step-size", "0"], "--step-size must be"),
    (["--width", "0"], "--width must be a number in [0.05, 4]"),
    (["--width", "100"], "--width must be"),
    (["--width", "nan"], "--width must be"),
    (["--label-smoothing", "nan"], "--label-smoothing must be"),
    (["--dropout", "0.99"], "--dropout must be"),
    (["--erase", "inf"], "--erase must be"),
    (["--crop-padding", "1000"], "--crop-padding must be an integer from 0 to 16"),
    (["--val-size", "-1"], "--val-size must be"),
    (["--name", "run\n"], "--name 'run\\n' is not usable as a folder name"),
    (["--name", ""], "--name '' is not usable"),
    (["--name", "x" * 256], "(256 characters) is not usable"),
    (["--name", "a/b"], "--name 'a/b' is not usable"),
    (["--name", "_r"], "is not usable"),
    (["--name", ".hidden"], "is not usable"),
    (["--name", "with space"], "is not usable"),
]


@pytest.mark.parametrize("args,message", CNN_OPTION_CASES,
                         ids=[" ".join(a)[:40] for a, _ in CNN_OPTION_CASES])
def test_train_cnn_refuses_out_of_range_values_before_any_work(args: list[str], message: str,
                                                               tmp_path: Path,
                                                               fmtool_home: Path):
    # The data folder does not exist: any work before the check would fail differently.
    result = runner.invoke(app, ["train", "cnn", "--data-dir", str(tmp_path / "none"), *args])
    line = final_error(result)
    assert line.startswith("error: ") and message in line, line
    assert not fmtool_home.exists() or not list(fmtool_home.rglob("*.pt"))


VAE_OPTION_CASES = [
    (["--image-size", "48"], "--image-size must be a multiple of 32 from 32 to 512, got 48"),
    (["--image-size", "1024"], "--image-size must be"),
    (["--image-size", "0"], "--image-size must be"),
    (["--latent-dim", "0"], "--latent-dim must be an integer from 1 to 2048"),
    (["--latent-dim", "100000"], "--latent-dim must be"),
    (["--image-size", "512", "--latent-dim", "1024"], "lower --image-size or --latent-dim"),
    (["--image-size", "256", "--latent-dim", "2048"], "lower --image-size or --latent-dim"),
    (["--val-fraction", "nan"], "--val-fraction must be"),
    (["--val-fraction", "1"], "--val-fraction must be"),
    (["--batch-size", "1"], "--batch-size must be an integer from 2"),
    (["--lr", "inf"], "--lr must be"),
]


@pytest.mark.parametrize("args,message", VAE_OPTION_CASES,
                         ids=[" ".join(a) for a, _ in VAE_OPTION_CASES])
def test_train_vae_refuses_out_of_range_values_before_decoding_any_face(
        args: list[str], message: str, faces: Path, fmtool_home: Path):
    result = runner.invoke(app, ["train", "vae", "--data-dir", str(faces), "--device", "cpu",
                                 *args])
    line = final_error(result)
    assert message in line, line
    assert not (fmtool_home / "cache").exists()  # no face was decoded into the cache


OTHER_OPTION_CASES = [
    (["fuse", "a.jpg", "--group-a", "A", "--group-b", "B", "--strength", "nan"],
     "--strength must be a number in [-100, 100], got nan"),
    (["fuse", "a.jpg", "--group-a", "A", "--group-b", "B", "--strength", "inf"], "--strength"),
    (["fuse", "a.jpg", "--group-a", "A", "--group-b", "B", "--strength", "-inf"], "--strength"),
    (["fuse", "a.jpg", "--group-a", "A", "--group-b", "B", "--strength", "1e9"], "--strength"),
    (["fuse", "a.jpg", "b.jpg", "--steps", "1"], "--steps must be an integer from 2 to 1000"),
    (["fuse", "a.jpg", "b.jpg", "--steps", "100000"], "--steps must be"),
    (["reconstruct", "faces", "--seed", "-1"], "--seed must be an integer from 0 to"),
    (["reconstruct", "faces", "--seed", str(2**64)], "--seed must be"),
    (["project", "--seed", str(2**32)], "--seed must be an integer from 0 to 4294967295"),
    (["project", "--per-class", "0"], "--per-class must be an integer from 1 to 1000"),
    (["project", "--per-class", "5000"], "--per-class must be"),
]


@pytest.mark.parametrize("args,message", OTHER_OPTION_CASES,
                         ids=[" ".join(a[:1] + a[-2:]) for a, _ in OTHER_OPTION_CASES])
def test_other_commands_refuse_out_of_range_values(args: list[str], message: str):
    line = final_error(runner.invoke(app, args))
    assert message in line, line


def test_project_refuses_more_per_class_than_the_test_set_has(cnn_run: dict):
    labels = load_from_dir(cnn_run["data"]).test_labels
    most = int(torch.bincount(labels, minlength=10).max())
    result = runner.invoke(app, ["project", "--checkpoint", str(cnn_run["run"]), "--data-dir",
                                 str(cnn_run["data"]), "--method", "pca", "--per-class",
                                 str(most + 1), "--device", "cpu"],
                           env={"FMTOOL_HOME": str(cnn_run["home"])})
    line = final_error(result)
    assert f"--per-class must be at most {most} for this test set" in line, line
    fits = runner.invoke(app, ["project", "--checkpoint", str(cnn_run["run"]), "--data-dir",
                               str(cnn_run["data"]), "--method", "pca", "--per-class", str(most),
                               "--device", "cpu", "--json"],
                         env={"FMTOOL_HOME": str(cnn_run["home"])})
    assert fits.exit_code == 0, fits.output
    assert json.loads(fits.stdout)["points"] == len(labels)  # every class gave all it has


@pytest.mark.parametrize("args", [
    ["--warmup", "0.999", "--schedule", "onecycle"],  # just below the bound
    ["--warmup", "0.5", "--schedule", "onecycle"],  # a warm-up of exactly one batch of two
    ["--warmup", "0.5", "--schedule", "cosine"],
    ["--seed", str(MAX_SEED)],  # the largest seed, through every derived generator
    ["--lr", "10", "--weight-decay", "1"],  # the upper ends (the model may diverge; no crash)
])
def test_values_at_the_edges_of_their_ranges_train(args: list[str], tmp_path: Path):
    data = synthetic_fashion(tmp_path / "fashion", train=32, test=16)
    result = runner.invoke(app, ["train", "cnn", "--data-dir", str(data), "--epochs", "1",
                                 "--limit", "32", *TINY_CNN, *args])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("name,usable", [
    ("r", True), ("a" * 255, True), ("2026-01-01_run.v2", True), ("a" * 256, False),
    ("", False), ("run\n", False), ("\nrun", False), ("run\r", False), ("ru n", False),
    ("..", False), ("-x", False), ("x/y", False), ("été", False), ("x\x00", False),
])
def test_run_names_must_be_whole_usable_folder_names(name: str, usable: bool):
    if usable:
        assert check_run_name(name) == name
    else:
        with pytest.raises(UserError, match="not usable as a folder name"):
            check_run_name(name)


def test_recipes_check_every_value_against_its_range():
    with pytest.raises(UserError, match="must be a number in"):
        CNN_PAPER.with_overrides(lr=float("nan")).check()
    with pytest.raises(UserError, match="latent"):
        VAE_PAPER.with_overrides(image_size=512, latent_dim=2048).check()
    assert VAE_PAPER.check() is VAE_PAPER and CNN_PAPER.check() is CNN_PAPER
    with pytest.raises(UserError, match="lacks epochs"):
        type(CNN_PAPER).from_dict({"lr": 0.1}, "run.json: ")


# == 8. data edge cases ===========================================================================

def _fashion_with(root: Path, name: str, **files) -> Path:
    """Synthetic Fashion-MNIST with some of its files replaced by other arrays."""
    import numpy as np

    folder = synthetic_fashion(root / name, train=20, test=10)
    for stem, array in files.items():
        write_idx(folder / f"{stem.replace('_', '-')}-idx{array.ndim}-ubyte.gz",
                  np.asarray(array, dtype=np.uint8))
    return folder


def _zeros(*shape: int):
    import numpy as np

    return np.zeros(shape, np.uint8)


FASHION_CASES = {
    "no training images": ({"train_images": _zeros(0, 28, 28), "train_labels": _zeros(0)},
                           "holds no data"),
    "no test labels": ({"t10k_labels": _zeros(0)}, "holds no data"),
    "images of zero width": ({"train_images": _zeros(20, 28, 0)}, "holds no data"),
    "images of zero height": ({"t10k_images": _zeros(10, 0, 28)}, "holds no data"),
    "32x32 images": ({"train_images": _zeros(20, 32, 32)}, "are 32x32 pixels"),
    "28x14 images": ({"t10k_images": _zeros(10, 28, 14)}, "are 28x14 pixels"),
    "1x1 images": ({"train_images": _zeros(20, 1, 1)}, "not Fashion-MNIST"),
}


@pytest.mark.parametrize("case", list(FASHION_CASES))
def test_fashion_data_with_no_data_or_other_sizes_is_refused(case: str, tmp_path: Path,
                                                             cnn_run: dict):
    files, reason = FASHION_CASES[case]
    folder = _fashion_with(tmp_path, "fashion", **files)
    result = runner.invoke(app, ["train", "cnn", "--data-dir", str(folder), "--epochs", "1",
                                 *TINY_CNN])
    line = final_error(result)
    assert reason in line and str(folder) in line, line
    evaluated = runner.invoke(app, ["eval", str(cnn_run["run"]), "--data-dir", str(folder),
                                    "--device", "cpu"])
    assert reason in final_error(evaluated)


def _face_folder(root: Path, layout: dict[str, list[str]]) -> Path:
    """{person: ["good", "empty", ...]}: good faces and unreadable files."""
    from tests.helpers.faces import face_image

    for p, (person, kinds) in enumerate(layout.items()):
        (root / person).mkdir(parents=True)
        for i, kind in enumerate(kinds):
            path = root / person / f"{person}_{i + 1:04d}.jpg"
            if kind == "good":
                face_image(p, i, 64).save(path)
            else:
                path.write_bytes(b"")
    return root


@pytest.mark.parametrize("layout", [
    {"A": ["good"], "B": ["good"]},
    {"A": ["good", "empty"], "B": ["good"]},
    {"A": ["good", "empty", "empty"], "B": ["good"], "C": ["empty"]},
], ids=["two people, one face each", "one readable training face", "one of five readable"])
def test_train_vae_needs_two_training_faces(layout: dict, tmp_path: Path):
    folder = _face_folder(tmp_path / "faces", layout)
    result = runner.invoke(app, ["train", "vae", "--data-dir", str(folder), "--image-size", "32",
                                 "--latent-dim", "4", "--epochs", "1", "--device", "cpu",
                                 "--precision", "fp32", "--val-fraction", "0.5"])
    line = final_error(result)
    assert "at least 2" in line and str(folder) in line, line


def test_vae_task_refuses_a_single_training_face():
    from fmtool.data.faces import FaceSplits
    from fmtool.vae.task import VAETask

    faces = FaceSplits(train=torch.zeros(1, 3, 32, 32, dtype=torch.uint8),
                       val=torch.zeros(1, 3, 32, 32, dtype=torch.uint8), train_people=1,
                       val_people=1, source=Path("faces"))
    with pytest.raises(UserError, match="at least 2"):
        VAETask(faces, VAE_PAPER.with_overrides(image_size=32, latent_dim=4), torch.device("cpu"))


