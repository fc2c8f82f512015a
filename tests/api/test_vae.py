"""fmtool.VAE from Python: encoding, decoding, reconstructing and blending faces give what the
commands write, and a run trains as `fmtool train vae` trains it."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from fmtool import VAE, UserError, VAEConfig
from fmtool.cli.app import app
from fmtool.metrics import float32_value
from tests.helpers.checkpoints import save_vae
from tests.helpers.faces import write_faces

pytestmark = pytest.mark.usefixtures("one_thread")
runner = CliRunner()


@pytest.fixture
def faces(tmp_path: Path) -> Path:
    write_faces(tmp_path / "faces", people=2, per_person=3, size=64)
    return tmp_path / "faces"


@pytest.fixture
def vae(tmp_path: Path) -> VAE:
    return VAE.load(save_vae(tmp_path / "vae.pt", image_size=32, latent_dim=8), device="cpu")


def test_encode_gives_each_faces_mean_code_and_decode_gives_pictures(vae: VAE, faces: Path):
    files = sorted(faces.rglob("*.jpg"))[:3]
    codes = vae.encode(files)
    assert codes.shape == (3, 8) and codes.dtype == torch.float32
    pictures = vae.decode(codes)
    assert [p.size for p in pictures] == [(32, 32)] * 3 and pictures[0].mode == "RGB"
    assert vae.decode(codes[0])[0].tobytes() == pictures[0].tobytes()
    with pytest.raises(UserError, match="codes must be"):
        vae.decode(torch.zeros(2, 5))
    with pytest.raises(UserError, match="missing.jpg: no such file"):
        vae.encode([files[0], faces / "missing.jpg"])


def test_reconstruct_gives_the_numbers_reconstruct_writes(vae: VAE, faces: Path, tmp_path: Path):
    printed = runner.invoke(app, ["reconstruct", str(faces), "-r", "--out", str(tmp_path / "out"),
                                  "--checkpoint", str(vae.checkpoint), "--json", "--device", "cpu"])
    assert printed.exit_code == 0, printed.output
    rows = list(csv.DictReader((tmp_path / "out" / "metrics.csv").open()))
    files = [faces / row["file"] for row in rows]
    results = vae.reconstruct(files + [faces / "missing.jpg"])
    for row, result in zip(rows, results):
        assert result.psnr == pytest.approx(float(row["psnr"]), abs=1e-5)
        assert result.ssim == pytest.approx(float(row["ssim"]), abs=1e-5)
        assert result.psnr == float32_value(result.psnr)  # float32's digits, no more
        written = np.asarray(Image.open(tmp_path / "out" / row["output"]).convert("RGB"))
        assert np.abs(written.astype(int) - np.asarray(result.image).astype(int)).max() <= 1
    assert results[-1].error == "no such file" and results[-1].image is None
    summary = vae.reconstruct_folder(faces, tmp_path / "again", recursive=True)
    assert summary["mean"] == pytest.approx(json.loads(printed.stdout)["mean"])


def test_a_face_in_memory_is_prepared_as_its_file(vae: VAE, faces: Path):
    file = sorted(faces.rglob("*.jpg"))[0]
    picture = Image.open(file)
    assert torch.equal(vae.encode(file), vae.encode(picture))
    assert torch.equal(vae.encode(file), vae.encode(np.asarray(picture)))


def test_a_picture_in_memory_that_cannot_be_a_face_gets_its_error(vae: VAE, faces: Path):
    file = sorted(faces.rglob("*.jpg"))[0]
    empty = np.zeros((0, 40, 3), np.uint8)
    results = vae.reconstruct([file, empty, np.full((40, 40), 2.0)])
    assert [r.error for r in results] == [
        None, "an empty picture (40x0 pixels)",
        "a float picture's values must be 0 to 1, got 2 to 2; divide 0..255 values by 255"]
    assert results[0].psnr is not None and results[1].image is None
    with pytest.raises(UserError, match=r"^a picture in memory: an empty picture \(40x0 pixels\)$"):
        vae.encode([file, empty])


def test_fuse_runs_from_one_faces_reconstruction_to_the_others(vae: VAE, faces: Path):
    a, b = sorted(faces.rglob("*.jpg"))[0], sorted(faces.rglob("*.jpg"))[-1]
    frames = vae.fuse(a, b, steps=5)
    assert len(frames) == 5
    ends = [r.image.tobytes() for r in vae.reconstruct([a, b])]
    assert [frames[0].tobytes(), frames[-1].tobytes()] == ends
    fusion = vae.fusion(a, b, steps=3, method="slerp")
    assert fusion.values == [0.0, 0.5, 1.0] and fusion.info["method"] == "slerp"
    with pytest.raises(UserError, match="steps must be"):
        vae.fuse(a, b, steps=1)


def test_train_makes_the_run_train_vae_makes(faces: Path, fmtool_home: Path):
    vae = VAE.train("paper", epochs=1, image_size=32, latent_dim=8, batch_size=4, data_dir=faces,
                    name="faces", device="cpu", precision="fp32")
    assert vae.checkpoint == fmtool_home / "data" / "runs" / "vae" / "faces" / "best.pt"
    assert vae.config == VAEConfig(image_size=32, latent_dim=8)
    assert vae.meta["data"]["train_people"] + vae.meta["data"]["val_people"] == 2


def test_train_refuses_a_subset_too_small_to_learn_from_before_any_work(faces: Path):
    with pytest.raises(UserError, match="^limit must be an integer of at least 2, got 1$"):
        VAE.train("cpu", limit=1, data_dir=faces / "no-such-folder", device="cpu")


def test_a_config_builds_an_untrained_vae():
    vae = VAE.from_config(VAEConfig(image_size=32, latent_dim=4))
    assert vae.checkpoint is None and vae.encode(np.zeros((40, 40, 3), np.uint8)).shape == (1, 4)
