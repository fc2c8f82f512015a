"""`train vae`, `reconstruct` and `fuse` from the command line, on tiny synthetic faces."""

import csv
import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from fmtool.cli.app import app
from fmtool.data.faces import decode_faces, load_face_splits
from fmtool.engine.checkpoint import load_checkpoint
from fmtool.engine.device import seed_everything
from fmtool.engine.paths import runs_dir
from fmtool.engine.runs import read_metrics
from fmtool.engine.trainer import Trainer, TrainingInterrupted
from fmtool.vae.fuse import fuse_pair, slerp
from fmtool.vae.inference import decode, encode, load_vae
from fmtool.vae.recipes import RECIPES as VAE_RECIPES
from fmtool.vae.task import VAETask
from tests.helpers.faces import face_image, make_vae_checkpoint, write_faces

CPU = torch.device("cpu")
TINY = ["--recipe", "paper", "--image-size", "32", "--latent-dim", "16", "--batch-size", "8", "--device", "cpu"]


def run(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    return make_vae_checkpoint(tmp_path / "vae.pt")


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """Five faces in a folder, two more in a sub-folder, and one broken JPEG."""
    folder = tmp_path / "photos"
    (folder / "more").mkdir(parents=True)
    for i in range(5):
        face_image(i, 0).save(folder / f"face_{i}.jpg")
    for i in range(2):
        face_image(i, 1).save(folder / "more" / f"other_{i}.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    return folder


def test_train_vae_end_to_end_then_resume_then_use_the_latest_run(tmp_path: Path):
    write_faces(tmp_path / "faces", people=8, per_person=5)
    result = run("train", "vae", "--epochs", "1", "--data-dir", tmp_path / "faces",
                 "--name", "tiny", *TINY)
    assert result.exit_code == 0, result.output
    run_dir = runs_dir("vae") / "tiny"
    assert f"done: 1 epoch; run folder {run_dir}" in result.stderr.splitlines()
    (record,) = read_metrics(run_dir)
    for key in ("train_loss", "train_bce", "train_kl", "val_loss", "val_bce", "val_kl",
                "val_psnr", "val_ssim"):
        assert isinstance(record[key], float), key
    assert record["val_loss"] == pytest.approx(record["val_bce"] + record["val_kl"])
    assert (run_dir / "reconstructions" / "epoch_0001.png").is_file()
    assert (run_dir / "loss_curve.png").is_file()
    meta = load_checkpoint(run_dir / "best.pt", expect_kind="vae").meta
    assert meta["config"] == {"image_size": 32, "latent_dim": 16, "crop": [224, 250],
                              "decoder": "transposed"}
    assert meta["recipe"]["lr"] == 3e-4
    assert meta["data"]["train_people"] + meta["data"]["val_people"] == 8

    again = run("train", "vae", "--name", "tiny", "--resume", "--epochs", "2", "--device", "cpu")
    assert again.exit_code == 0, again.output
    assert [r["epoch"] for r in read_metrics(run_dir)] == [1, 2]
    changed = run("train", "vae", "--name", "tiny", "--resume", "--epochs", "3", "--kl-weight",
                  "0.5", "--val-limit", "3")
    assert changed.exit_code == 2 and changed.stderr.splitlines()[-1] == (
        "error: --resume continues run tiny with the recipe and options it started with "
        "(kl_weight 1, val_limit none); drop --kl-weight and --val-limit, or start a new run "
        "under another --name")

    out = tmp_path / "recon"
    used = run("reconstruct", tmp_path / "faces", "-r", "--out", out, "--json", "--device", "cpu")
    assert used.exit_code == 0, used.output
    report = json.loads(used.stdout)
    assert report["checkpoint"].endswith("tiny/best.pt") and report["images"] == 40


def test_the_upsampling_decoder_and_a_kl_weight_train_and_are_kept(tmp_path: Path):
    write_faces(tmp_path / "faces", people=6, per_person=4)
    result = run("train", "vae", "--epochs", "1", "--data-dir", tmp_path / "faces", "--name", "up",
                 "--decoder", "upsample", "--kl-weight", "0.25", *TINY)
    assert result.exit_code == 0, result.output
    run_dir = runs_dir("vae") / "up"
    (record,) = read_metrics(run_dir)
    assert record["val_loss"] == pytest.approx(record["val_bce"] + 0.25 * record["val_kl"])
    assert record["train_loss"] == pytest.approx(record["train_bce"] + 0.25 * record["train_kl"])
    meta = load_checkpoint(run_dir / "best.pt", expect_kind="vae").meta
    assert meta["config"]["decoder"] == "upsample" and meta["recipe"]["kl_weight"] == 0.25
    model, _, _ = load_vae(run_dir / "best.pt", CPU)
    assert any(isinstance(m, torch.nn.Upsample) for m in model.decoder.modules())


def _vae_trainer(faces: Path, run_dir: Path, **kwargs) -> Trainer:
    recipe = VAE_RECIPES["paper"].with_overrides(epochs=2, batch_size=8, image_size=32)
    seed_everything(recipe.seed)
    recipe = recipe.with_overrides(latent_dim=8)
    task = VAETask(load_face_splits(faces, 32, 0.2), recipe, CPU)
    return Trainer(task, recipe, run_dir, CPU, **kwargs)


def test_interrupted_training_resumes_to_the_same_weights(tmp_path: Path):
    write_faces(tmp_path / "faces", people=6, per_person=5)
    straight = _vae_trainer(tmp_path / "faces", tmp_path / "straight")
    straight.fit()

    stopped = _vae_trainer(tmp_path / "faces", tmp_path / "stopped")
    stopped.should_stop = lambda: (stopped.state.epoch, stopped.state.step) == (1, 1)
    with pytest.raises(TrainingInterrupted):
        stopped.fit()
    resumed = _vae_trainer(tmp_path / "faces", tmp_path / "stopped")
    resumed.resume()
    resumed.fit()
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    assert read_metrics(tmp_path / "stopped")[-1]["val_loss"] == read_metrics(tmp_path / "straight")[-1]["val_loss"]


def test_image_size_must_be_a_multiple_of_32(tmp_path: Path):
    result = run("train", "vae", "--image-size", "100", "--data-dir", tmp_path)
    assert result.exit_code == 2 and "multiple of 32" in result.output


def test_reconstruct_writes_images_figures_and_csv(photos: Path, checkpoint: Path, tmp_path: Path):
    out = tmp_path / "out"
    result = run("reconstruct", photos, "--checkpoint", checkpoint, "--out", out, "--device", "cpu")
    assert result.exit_code == 1  # one file could not be read ...
    assert "broken.jpg" in result.stderr and "reconstructed 5 images, 1 skipped" in result.stdout
    written = sorted(p.name for p in (out / "images").iterdir())
    assert written == [f"face_{i}.png" for i in range(5)]  # ... the others were done
    assert Image.open(out / "images" / "face_0.png").size == (32, 32)
    assert (out / "side_by_side_001.png").is_file() and (out / "alternating_001.png").is_file()
    with open(out / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["file"] for r in rows] == [f"face_{i}.jpg" for i in range(5)]
    assert all(0 < float(r["mse"]) < 1 and -1 <= float(r["ssim"]) <= 1 for r in rows)

    refused = run("reconstruct", photos, "--checkpoint", checkpoint, "--out", out)
    assert refused.exit_code == 2 and "--force" in refused.output
    forced = run("reconstruct", photos, "-r", "--checkpoint", checkpoint, "--out", out,
                 "--force", "--device", "cpu")
    assert forced.exit_code == 1 and (out / "images" / "more" / "other_1.png").is_file()
    with open(out / "metrics.csv") as handle:
        assert len(list(csv.DictReader(handle))) == 7


def test_reconstruction_is_deterministic_unless_sampled(photos: Path, checkpoint: Path, tmp_path: Path):
    outputs = iter(tmp_path / f"out{i}" for i in range(10))

    def psnr_column(*extra: str) -> list[str]:
        out = next(outputs)
        run("reconstruct", photos, "--checkpoint", checkpoint, "--out", out, "--device", "cpu", *extra)
        with open(out / "metrics.csv") as handle:
            return [row["psnr"] for row in csv.DictReader(handle)]

    assert psnr_column() == psnr_column()
    assert psnr_column("--sample") != psnr_column()
    assert psnr_column("--sample", "--seed", "3") == psnr_column("--sample", "--seed", "3")


def test_reconstruct_puts_64_pairs_in_each_grid(tmp_path: Path, checkpoint: Path):
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(70):
        face_image(i % 7, i, size=40).save(folder / f"f{i:02d}.png")
    result = run("reconstruct", folder, "--checkpoint", checkpoint, "--out", tmp_path / "o",
                 "--device", "cpu")
    assert result.exit_code == 0, result.output
    pair = 32 + 2  # each 32-px face plus make_grid's padding
    first = Image.open(tmp_path / "o" / "alternating_001.png")
    second = Image.open(tmp_path / "o" / "alternating_002.png")
    assert first.size == (16 * pair + 2, 8 * pair + 2)  # 8 rows of 8 (original, reconstruction) pairs
    assert second.size == (12 * pair + 2, pair + 2)  # the other 6 pairs, in one row
    assert not (tmp_path / "o" / "alternating_003.png").exists()


def test_fuse_ends_are_the_inputs_reconstructions(photos: Path, checkpoint: Path):
    model, config, _ = load_vae(checkpoint, CPU)
    a, b = photos / "face_0.jpg", photos / "face_3.jpg"
    images, _, _ = decode_faces([a, b], 32)
    mu, _ = encode(model, images, CPU)
    expected = decode(model, mu, CPU)
    for method in ("lerp", "slerp"):
        fusion = fuse_pair(model, config, a, b, steps=6, method=method, device=CPU)
        assert fusion.frames.shape == (6, 3, 32, 32) and fusion.values[0] == 0 and fusion.values[-1] == 1
        assert torch.allclose(fusion.frames[0], expected[0], atol=1e-6)
        assert torch.allclose(fusion.frames[-1], expected[1], atol=1e-6)


def test_slerp_keeps_codes_on_the_shell_where_lerp_shrinks_them():
    torch.manual_seed(0)
    z_a, z_b = torch.randn(256), torch.randn(256)
    z_b = z_b / z_b.norm() * z_a.norm()
    middle = slerp(z_a, z_b, torch.tensor([0.5]))[0]
    assert middle.norm() == pytest.approx(float(z_a.norm()), rel=1e-4)
    assert ((z_a + z_b) / 2).norm() < 0.8 * z_a.norm()  # lerp's midpoint: well inside


def test_fuse_writes_a_strip_and_its_frames(photos: Path, checkpoint: Path, tmp_path: Path):
    out = tmp_path / "blend.png"
    result = run("fuse", photos / "face_0.jpg", photos / "face_1.jpg", "--steps", "5",
                 "--method", "slerp", "--checkpoint", checkpoint, "--out", out, "--json", "--device", "cpu")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [f["a"] for f in report["frames"]] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert Image.open(out).size == (7 * 34 + 2, 34 + 2)  # A, five frames, B
    assert sorted(p.name for p in (tmp_path / "blend_frames").iterdir()) == [
        f"frame_{i:02d}.png" for i in range(5)]
    refused = run("fuse", photos / "face_0.jpg", photos / "face_1.jpg", "--checkpoint", checkpoint,
                  "--out", out, "--steps", "5")
    assert refused.exit_code == 2 and "--force" in refused.output


@pytest.mark.parametrize("out, line", [
    ("g.svg", "error: --out g.svg: the strip's name must end in .png, .jpg, .jpeg, .webp, .bmp, "
              ".tif, .tiff, .gif, .ppm (or name a folder, without a suffix, for strip.png and the "
              "frames)"),
    ("photos", "error: --out photos: photos/face_0.jpg is in that folder, and fuse's strip and "
               "frames would lie among your faces; choose another --out"),
    ("photos/people/fused", "error: --out photos/people/fused: that is in the group folder "
                            "photos/people, and the group would read fuse's strip and frames as "
                            "faces; choose another --out"),
])
def test_fuse_refuses_an_out_that_is_no_picture_or_lies_among_its_faces(
        out: str, line: str, photos: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(photos.parent)
    (photos / "people").mkdir()
    result = run("fuse", "photos/face_0.jpg", "--group-a", "photos/people", "--group-b",
                 "photos/people", "--out", out)  # refused before a model is looked for
    assert result.exit_code == 2 and result.stderr.splitlines() == [line]
    assert sorted(p.name for p in photos.parent.iterdir()) == ["photos"]


def test_fuse_an_empty_pairs_file_says_so(checkpoint: Path, tmp_path: Path):
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("# young and old\n\n")
    result = run("fuse", "--pairs", pairs, "--checkpoint", checkpoint, "--out", tmp_path / "p.png")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [f"error: pairs file {pairs} holds no pairs; write one "
                                          "`A.jpg B.jpg` per line (# starts a comment)"]


def test_fuse_reports_an_unreadable_face(photos: Path, checkpoint: Path, tmp_path: Path):
    result = run("fuse", photos / "face_0.jpg", photos / "broken.jpg", "--checkpoint", checkpoint,
                 "--out", tmp_path / "x.png")
    assert result.exit_code == 2 and "broken.jpg" in result.output
    assert not (tmp_path / "x.png").exists()
    lonely = run("fuse", photos / "face_0.jpg", "--checkpoint", checkpoint)
    assert lonely.exit_code == 2 and "two faces" in lonely.output


def test_group_fusion_and_attribute_vector(tmp_path: Path, checkpoint: Path, photos: Path):
    lfw = tmp_path / "lfw"
    write_faces(lfw / "lfw-deepfunneled", people=4, per_person=3)
    (lfw / "female_names.txt").write_text("Person_0_0001.jpg\nPerson_0_0002.jpg\nNobody_0001.jpg\n")
    group_b = lfw / "lfw-deepfunneled" / "Person_3"  # a folder works too

    walk = run("fuse", "--group-a", lfw / "female_names.txt", "--group-b", group_b, "--steps", "3",
               "--checkpoint", checkpoint, "--out", tmp_path / "groups", "--json", "--device", "cpu")
    assert walk.exit_code == 0, walk.output
    report = json.loads(walk.stdout)
    assert (report["mode"], report["faces_a"], report["faces_b"]) == ("groups", 2, 3)
    assert "1 of 3 names not found" in walk.stderr
    assert (tmp_path / "groups" / "strip.png").is_file() and (tmp_path / "groups" / "frame_02.png").is_file()

    moved = run("fuse", photos / "face_2.jpg", "--group-a", lfw / "female_names.txt",
                "--group-b", group_b, "--strength", "2", "--steps", "3", "--checkpoint", checkpoint,
                "--out", tmp_path / "attr.png", "--json", "--device", "cpu")
    assert moved.exit_code == 0, moved.output
    assert [f["strength"] for f in json.loads(moved.stdout)["frames"]] == [0.0, 1.0, 2.0]
    assert Image.open(tmp_path / "attr.png").size == (4 * 34 + 2, 34 + 2)  # the face, three frames
