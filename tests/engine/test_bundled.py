"""The CNN and the VAE that ship inside fmtool: package data with model cards whose figures are
true, used by every command when there is no run of their kind yet, or by name (`builtin`)."""

from __future__ import annotations

import json
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
from fmtool.engine.runs import checkpoint_history
from fmtool.vae.config import VAEConfig
from tests.helpers.fashion import synthetic_fashion
from tests.helpers.paths import REPO

runner = CliRunner()
BUNDLED_CNN = bundled_checkpoint("cnn")
BUNDLED_VAE = bundled_checkpoint("vae")


def card() -> dict:
    return load_checkpoint(BUNDLED_CNN, expect_kind="cnn").meta["card"]


def vae_card() -> dict:
    return load_checkpoint(BUNDLED_VAE, expect_kind="vae").meta["card"]


def test_the_bundled_cnn_is_a_small_fp16_checkpoint_with_a_card():
    assert BUNDLED_CNN is not None and BUNDLED_CNN.parent.name == "weights"
    assert BUNDLED_CNN.stat().st_size <= 3 * 1024 * 1024
    checkpoint = load_checkpoint(BUNDLED_CNN, expect_kind="cnn")  # weights_only: no code runs
    assert checkpoint.train_state is None
    assert {v.dtype for v in checkpoint.model.values() if v.is_floating_point()} == {torch.float16}
    assert card()["command"].startswith("fmtool train cnn ")
    metrics = card()["metrics"]
    assert {"test_accuracy", "val_accuracy", "photo_accuracy"} <= set(metrics)
    # The card's fp32_test_accuracy is not checked against its test_accuracy: the fp32 weights
    # do not ship, so the test could only compare two numbers from the same card. The fp16
    # figure itself is re-measured below (test_its_test_accuracy_is_the_one_on_its_card).


@pytest.mark.slow
def test_its_test_accuracy_is_the_one_on_its_card(shared_data: Path):
    """All 10,000 test images, as `fmtool eval` measures them: the card is to be trusted."""
    from fmtool import CNN

    report = CNN.load(BUNDLED_CNN, device="cpu").evaluate(data_dir=shared_data / "fashion-mnist")
    assert report.images == 10_000
    assert abs(report.accuracy - card()["metrics"]["test_accuracy"]) <= 1e-4


@pytest.mark.slow
def test_its_photo_accuracy_is_the_one_on_its_card_and_on_the_models_page(shared_data: Path):
    from benchmarks.bench_photos import score_photos

    report = score_photos(BUNDLED_CNN, shared_data / "clothing-photos")
    assert report["photos"] == 200
    assert abs(report["accuracy"] - card()["metrics"]["photo_accuracy"]) <= 1e-6
    page = (REPO / "docs" / "models.md").read_text()
    assert f"{report['correct']} of the 200 photos" in page


@pytest.mark.slow
def test_its_single_view_photo_accuracy_is_the_one_on_the_photos_page(shared_data: Path):
    """`--single-view`: one picture per photo instead of nine; docs/photos.md gives the count
    beside the card's nine-view one."""
    from benchmarks.bench_photos import score_photos

    report = score_photos(BUNDLED_CNN, shared_data / "clothing-photos", single_view=True)
    assert report["photos"] == 200 and report["single_view"] is True
    page = " ".join((REPO / "docs" / "photos.md").read_text().split())
    assert f"(the bundled model got {report['correct']} with the first view alone)" in page


def test_the_models_page_names_the_file_and_its_sha256():
    import hashlib

    digest = hashlib.sha256(BUNDLED_CNN.read_bytes()).hexdigest()
    page = (REPO / "docs" / "models.md").read_text()
    assert digest in page
    accuracy = card()["metrics"]["test_accuracy"]
    assert re.search(rf"\b{accuracy * 100:.2f}%", page)


def test_the_bundled_vae_is_a_64px_fp16_checkpoint_under_10_mb_with_a_card():
    assert BUNDLED_VAE is not None and BUNDLED_VAE.parent.name == "weights"
    assert BUNDLED_VAE.stat().st_size <= 10_000_000
    checkpoint = load_checkpoint(BUNDLED_VAE, expect_kind="vae")
    assert checkpoint.train_state is None
    assert VAEConfig.from_meta(checkpoint.meta) == VAEConfig(image_size=64, latent_dim=256)
    assert {v.dtype for v in checkpoint.model.values() if v.is_floating_point()} == {torch.float16}
    assert vae_card()["command"].startswith("fmtool train vae ")
    # As for the CNN, the card's fp32_psnr is not checked: the fp32 weights do not ship. The
    # fp16 figures are re-measured below (test_its_psnr_and_ssim_on_held_out_people_...).
    assert {"psnr", "ssim", "faces", "people"} <= set(vae_card()["metrics"])


@pytest.mark.slow
def test_its_psnr_and_ssim_on_held_out_people_are_those_on_its_card(shared_data: Path):
    from fmtool import VAE

    report = VAE.load(BUNDLED_VAE, device="cpu").evaluate(shared_data / "lfw" / "lfw-deepfunneled")
    metrics = vae_card()["metrics"]
    assert (report["faces"], report["people"]) == (metrics["faces"], metrics["people"])
    assert abs(report["psnr"] - metrics["psnr"]) <= 0.05
    assert abs(report["ssim"] - metrics["ssim"]) <= 0.005


def test_the_models_page_names_the_vae_file_its_sha256_and_psnr():
    import hashlib

    page = (REPO / "docs" / "models.md").read_text()
    assert hashlib.sha256(BUNDLED_VAE.read_bytes()).hexdigest() in page
    assert f"{vae_card()['metrics']['psnr']:.2f} dB" in page


@pytest.mark.parametrize("kind, keys", [
    ("cnn", {"train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc"}),
    ("vae", {"train_loss", "train_bce", "train_kl", "val_loss", "val_psnr", "val_ssim"}),
])
def test_both_bundled_models_carry_the_history_of_every_epoch_they_trained(kind: str,
                                                                          keys: set[str]):
    """What `fmtool report` and `fmtool eval` draw the loss and accuracy curves from when the
    model ships without its run folder."""
    path = bundled_checkpoint(kind)
    meta = load_checkpoint(path, expect_kind=kind).meta
    history = checkpoint_history(path, meta)
    trained = meta["card"]["training"]["epochs"]  # the recipe's, or fewer where it was stopped
    assert [record["epoch"] for record in history] == list(range(1, trained + 1))
    assert meta["epoch"] <= trained <= meta["recipe"]["epochs"]
    assert all(keys <= set(record) for record in history)
    assert history[meta["epoch"] - 1] == meta["metrics"]  # the selected epoch, as recorded
    assert len(json.dumps(history)) < 0.01 * path.stat().st_size  # tens of KB beside megabytes


@pytest.mark.parametrize("command", ["reconstruct", "fuse"])
def test_a_fresh_install_reconstructs_and_fuses_with_the_bundled_vae(command: str, tmp_path: Path):
    from tests.helpers.faces import write_faces

    faces = write_faces(tmp_path / "faces", people=2, per_person=2)
    args = {"reconstruct": ["reconstruct", str(tmp_path / "faces"), "-r", "--out",
                            str(tmp_path / "out")],
            "fuse": ["fuse", str(faces[0]), str(faces[-1]), "--steps", "4", "--out",
                     str(tmp_path / "strip.png")]}
    result = runner.invoke(app, args[command])
    assert result.exit_code == 0, result.output
    assert f"using the bundled VAE model (no VAE run yet): {BUNDLED_VAE}" in result.stderr
    assert (tmp_path / ("out" if command == "reconstruct" else "strip.png")).exists()


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
        assert archive.read("fmtool/weights/vae.pt") == BUNDLED_VAE.read_bytes()
