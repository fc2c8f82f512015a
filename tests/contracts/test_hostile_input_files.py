"""Hostile and broken input through the real commands: odd images, damaged checkpoints, bad data.

Every bad input must give the right result or one line naming the file (no traceback); good
files in the same call are still processed, and the exit code says whether all succeeded.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import pickle
import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from fmtool.cli.app import app
from fmtool.data.faces import load_face
from fmtool.engine.checkpoint import FORMAT_VERSION
from fmtool.photo.views import load_fashion_views
from tests.helpers.faces import make_vae_checkpoint, write_faces
from tests.helpers.fashion import synthetic_fashion, write_idx

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("one_thread")


# -- hostile image files ----------------------------------------------------------------------

def base_picture() -> np.ndarray:
    """A light, off-centre bar on black, wider than high: a wrong rotation shows."""
    picture = np.zeros((48, 64), np.uint8)
    picture[6:20, 8:56] = 255
    return picture


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(side: int = 100_000) -> bytes:
    """A valid PNG header declaring side x side pixels (10 Gpx), with almost no data."""
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
            + _png_chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + _png_chunk(b"IEND", b""))


def _encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def odd_but_valid(folder: Path) -> dict[str, tuple[Path, Path, float]]:
    """name -> (odd file, a plain file that shows the same picture, mean pixel tolerance)."""
    folder.mkdir(parents=True, exist_ok=True)
    base = Image.fromarray(base_picture())
    plain = folder / "plain reference.png"
    base.save(plain)
    made: dict[str, tuple[Path, Path, float]] = {}

    def add(name: str, filename: str, write, reference: Path = plain, tolerance: float = 0.0):
        path = folder / filename
        write(path)
        made[name] = (path, reference, tolerance)

    add("16-bit PNG", "deep 16-bit.png",
        lambda p: Image.fromarray(base_picture().astype(np.uint16) * 257).save(p))
    add("CMYK JPEG", "print cmyk.jpg",
        lambda p: base.convert("RGB").convert("CMYK").save(p, "JPEG", quality=95), tolerance=4)
    add("palette PNG", "palette.png", lambda p: base.convert("P").save(p))
    # RGBA: a dark item on a *transparent black* background; transparency must become white.
    rgba = np.zeros((48, 64, 4), np.uint8)
    rgba[6:20, 8:56] = (60, 60, 60, 255)
    on_white = folder / "rgba on white.png"
    Image.alpha_composite(Image.new("RGBA", (64, 48), (255,) * 4),
                          Image.fromarray(rgba, "RGBA")).convert("L").save(on_white)
    add("RGBA PNG", "transparent.png", lambda p: Image.fromarray(rgba, "RGBA").save(p), on_white)
    add("animated GIF", "animated.gif", lambda p: base.convert("P").save(
        p, save_all=True, append_images=[Image.fromarray(255 - base_picture()).convert("P")],
        duration=100, loop=0))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display": stored rotated the other way
    add("EXIF-rotated JPEG", "phone photo.jpg", lambda p: base.transpose(
        Image.Transpose.ROTATE_90).convert("RGB").save(p, "JPEG", quality=95, exif=exif.tobytes()),
        tolerance=4)
    add("corrupt EXIF", "bad exif.jpg", lambda p: base.convert("RGB").save(
        p, "JPEG", quality=95, exif=b"Exif\x00\x00II*\x00" + b"\xff" * 7), tolerance=4)
    add("name with spaces", "my shirt (2).png", lambda p: base.save(p))
    add("non-ASCII name", "chaussure été 靴.png", lambda p: base.save(p))
    return made


def unreadable(folder: Path) -> dict[str, tuple[Path, str]]:
    """name -> (bad file, the reason it must be refused with)."""
    folder.mkdir(parents=True, exist_ok=True)
    png = _encoded(Image.fromarray(base_picture()), "PNG")
    jpeg = _encoded(Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 64, 3),
                                                                       dtype=np.uint8)), "JPEG")
    contents = {
        "zero-byte file": ("empty.png", b"", "empty"),
        "text named .png": ("notes.png", b"shopping list: milk, eggs\n", "not an image"),
        "truncated PNG": ("cut.png", png[: len(png) // 2], "truncated"),
        "truncated JPEG": ("cut.jpg", jpeg[: len(jpeg) // 2], "truncated"),
        "decompression bomb": ("bomb.png", bomb_png(), "enormous size"),
    }
    made = {}
    for name, (filename, data, reason) in contents.items():
        (folder / filename).write_bytes(data)
        made[name] = (folder / filename, reason)
    (folder / "a folder.png").mkdir()
    made["directory"] = (folder / "a folder.png", "is a directory")
    made["missing path"] = (folder / "never written.png", "no such file")
    return made


@pytest.mark.parametrize("name", ["16-bit PNG", "CMYK JPEG", "palette PNG", "RGBA PNG",
                                  "animated GIF", "EXIF-rotated JPEG", "corrupt EXIF",
                                  "name with spaces", "non-ASCII name"])
def test_odd_images_decode_to_what_they_show(name: str, tmp_path: Path):
    odd, reference, tolerance = odd_but_valid(tmp_path)[name]
    for decode in (load_fashion_views, lambda p: load_face(p, 32)):
        got, expected = decode(odd).astype(float), decode(reference).astype(float)
        assert got.shape == expected.shape
        assert np.abs(got - expected).mean() <= tolerance, name
    if name == "EXIF-rotated JPEG":  # the check above can tell a missed rotation
        unrotated = Image.open(odd).convert("L").resize((64, 48))
        assert np.abs(np.asarray(unrotated, float) - base_picture()).mean() > 40


# -- classify -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cnn(tmp_path_factory) -> dict:
    """A tiny CNN trained for one epoch (what `train cnn` writes), with its data and home."""
    root = tmp_path_factory.mktemp("cnn")
    data = synthetic_fashion(root / "fashion", train=120, test=40)
    env = {"FMTOOL_HOME": str(root / "home")}
    result = runner.invoke(app, ["train", "cnn", "--data-dir", str(data), "--epochs", "1",
                                 "--width", "0.125", "--batch-size", "16", "--precision", "fp32",
                                 "--device", "cpu", "--name", "tiny"], env=env)
    assert result.exit_code == 0, result.output
    return {"env": env, "data": data, "checkpoint": root / "home/data/runs/cnn/tiny/best.pt"}


def _error_lines(stderr: str, prefix: str) -> list[str]:
    lines = stderr.strip().splitlines()
    assert all(line.startswith(prefix) for line in lines), stderr
    return lines


def _final_error(stderr: str) -> str:
    """The one error line, which ends stderr (train commands log their set-up before it)."""
    lines = stderr.strip().splitlines()
    assert [line for line in lines if line.startswith("error:")] == lines[-1:], stderr
    assert "Traceback" not in stderr
    return lines[-1]


def test_classify_reports_each_bad_image_and_still_classifies_the_rest(cnn: dict, tmp_path: Path):
    good = [odd for odd, _, _ in odd_but_valid(tmp_path / "good").values()]
    bad = unreadable(tmp_path / "bad")
    files = [good[0], *(path for path, _ in bad.values()), *good[1:]]
    result = runner.invoke(app, ["classify", *map(str, files), "--top-k", "3"], env=cnn["env"])
    assert result.exit_code == 1, result.output
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert [row[0] for row in rows] == [str(p) for p in good]
    assert all(len(row) == 7 and row[1] and 0 <= float(row[2]) <= 1 for row in rows)
    using, *lines = result.stderr.strip().splitlines()  # which checkpoint, then one line a file
    assert using == f"using the latest CNN run: {cnn['checkpoint']}"
    assert all(line.startswith("error: ") for line in lines), result.stderr
    assert len(lines) == len(bad) and "Traceback" not in result.output
    for line, (name, (path, reason)) in zip(lines, bad.items()):
        assert line.startswith(f"error: {path}: ") and reason in line, (name, line)

    as_json = runner.invoke(app, ["classify", *map(str, files), "--json"], env=cnn["env"])
    assert as_json.exit_code == 1
    answers = json.loads(as_json.stdout)
    assert [a["path"] for a in answers] == [str(p) for p in files]
    assert ["error" in a for a in answers] == [False, *[True] * len(bad), *[False] * len(good[1:])]

    only_good = runner.invoke(app, ["classify", *map(str, good)], env=cnn["env"])
    assert only_good.exit_code == 0 and only_good.stderr == using + "\n"
    assert len(only_good.stdout.splitlines()) == len(good)


def test_classify_gives_odd_images_the_answer_of_the_plain_picture(cnn: dict, tmp_path: Path):
    made = odd_but_valid(tmp_path)
    lossless = [name for name, (_, _, tolerance) in made.items() if tolerance == 0]
    references = sorted({made[name][1] for name in lossless})
    files = [made[name][0] for name in lossless] + references
    result = runner.invoke(app, ["classify", *map(str, files), "--top-k", "10", "--json"],
                           env=cnn["env"])
    assert result.exit_code == 0, result.output
    answers = {a["path"]: a["predictions"] for a in json.loads(result.stdout)}
    for name in lossless:
        odd, reference, _ = made[name]
        assert answers[str(odd)] == answers[str(reference)], name


# -- reconstruct and fuse (VAE) -------------------------------------------------------------

@pytest.fixture(scope="module")
def vae(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("vae")
    return {"checkpoint": make_vae_checkpoint(root / "vae.pt"),
            "env": {"FMTOOL_HOME": str(root / "home")}}


def test_reconstruct_skips_each_bad_image_by_name_and_does_the_rest(vae: dict, tmp_path: Path):
    folder = tmp_path / "faces"
    write_faces(folder, people=1, per_person=2, size=64)
    faces = sorted((folder / "Person_0").iterdir())
    for face in faces:
        face.rename(folder / face.name)
    made = odd_but_valid(folder)
    good = sorted({p for odd, reference, _ in made.values() for p in (odd, reference)}
                  | {folder / f.name for f in faces})
    bad = {name: item for name, item in unreadable(folder).items()
           if name not in ("directory", "missing path")}  # in a folder these are just not files
    out = tmp_path / "out"
    result = runner.invoke(app, ["reconstruct", str(folder), "--out", str(out), "--checkpoint",
                                 str(vae["checkpoint"]), "--device", "cpu", "--json"], env=vae["env"])
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["images"] == len(good)
    assert sorted(s["path"] for s in report["skipped"]) == sorted(str(p) for p, _ in bad.values())
    lines = _error_lines(result.stderr, "skipped ")
    assert len(lines) == len(bad)
    for path, reason in bad.values():
        assert any(line.startswith(f"skipped {path}: ") and reason in line for line in lines), path
    written = {p.name for p in (out / "images").iterdir()}
    assert {p.with_suffix(".png").name for p in good} <= written


@pytest.mark.parametrize("target", ["a file", "a missing folder"])
def test_reconstruct_needs_a_folder(vae: dict, tmp_path: Path, target: str):
    path = tmp_path / "face.png"
    if target == "a file":
        Image.fromarray(base_picture()).save(path)
    result = runner.invoke(app, ["reconstruct", str(path), "--checkpoint", str(vae["checkpoint"]),
                                 "--out", str(tmp_path / "out"), "--device", "cpu"], env=vae["env"])
    assert result.exit_code == 2, result.output
    (line,) = _error_lines(result.stderr, "error: ")
    assert str(path) in line


def test_fuse_blends_odd_images_and_names_a_bad_one(vae: dict, tmp_path: Path):
    made = odd_but_valid(tmp_path / "odd")
    names = list(made)
    base = ["fuse", "--checkpoint", str(vae["checkpoint"]), "--steps", "3", "--device", "cpu"]
    for a, b in zip(names[0::2], names[1::2] + names[:1]):
        out = tmp_path / f"{a}-{b}.png"
        result = runner.invoke(app, [*base, str(made[a][0]), str(made[b][0]), "--out", str(out)],
                               env=vae["env"])
        assert result.exit_code == 0 and out.is_file(), (a, b, result.output)
    good = made[names[0]][0]
    for name, (path, reason) in unreadable(tmp_path / "bad").items():
        for pair in ([path, good], [good, path]):
            result = runner.invoke(app, [*base, *map(str, pair), "--out", str(tmp_path / "x.png")],
                                   env=vae["env"])
            assert result.exit_code == 2, (name, result.output)
            (line,) = _error_lines(result.stderr, "error: ")
            assert str(path) in line and reason in line, (name, line)
            assert not (tmp_path / "x.png").exists()


def test_fuse_groups_name_each_unreadable_image_and_exit_1(vae: dict, tmp_path: Path):
    group_a, group_b = tmp_path / "a", tmp_path / "b"
    write_faces(group_a, people=1, per_person=2, size=64)
    write_faces(group_b, people=1, per_person=2, size=64)
    (group_a / "empty.png").write_bytes(b"")
    (group_b / "notes.png").write_text("not a face")
    result = runner.invoke(app, ["fuse", "--group-a", str(group_a), "--group-b", str(group_b),
                                 "--checkpoint", str(vae["checkpoint"]), "--steps", "3",
                                 "--out", str(tmp_path / "walk.png"), "--device", "cpu"],
                           env=vae["env"])
    assert (tmp_path / "walk.png").is_file()
    assert str(group_a / "empty.png") in result.stderr and str(group_b / "notes.png") in result.stderr
    assert result.exit_code == 1


# -- checkpoints ----------------------------------------------------------------------------

class CodePayload:
    """Unpickling this runs a shell command that creates a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def _torch_bytes(payload, **options) -> bytes:
    buffer = io.BytesIO()
    torch.save(payload, buffer, **options)
    return buffer.getvalue()


def damaged_checkpoints(folder: Path, good: Path, other_kind: Path, marker: Path) -> dict:
    """name -> (file, what the refusal must say)."""
    folder.mkdir(parents=True, exist_ok=True)
    raw = good.read_bytes()
    payload = CodePayload(marker)
    contents = {
        "truncated": (raw[: len(raw) // 2], "truncated or damaged"),
        "random bytes": (np.random.default_rng(1).bytes(4096), "not a PyTorch checkpoint"),
        "empty": (b"", "empty"),
        "another kind's": (other_kind.read_bytes(), "checkpoint, but this command needs"),
        "newer format": (_torch_bytes({"format_version": FORMAT_VERSION + 1, "meta": "{}",
                                       "model": {}}), "newer fmtool"),
        "code payload (torch zip)": (_torch_bytes({"format_version": 1, "meta": payload,
                                                   "model": {}}, pickle_protocol=4),
                                     "could run code"),
        "code payload (bare pickle)": (pickle.dumps({"format_version": 1, "meta": payload,
                                                     "model": {}}), "could run code"),
    }
    made = {}
    for index, (name, (data, reason)) in enumerate(contents.items()):
        path = folder / f"checkpoint {index}.pt"
        path.write_bytes(data)
        made[name] = (path, reason)
    return made


@pytest.fixture(scope="module")
def checkpoint_commands(cnn: dict, vae: dict, tmp_path_factory) -> dict:
    """Each command that reads a checkpoint, ready to run but for --checkpoint."""
    root = tmp_path_factory.mktemp("inputs")
    image = root / "shoe.png"
    Image.fromarray(base_picture()).save(image)
    faces = root / "faces"
    write_faces(faces, people=1, per_person=2, size=64)
    face = sorted(faces.rglob("*.jpg"))[0]
    data = str(cnn["data"])
    return {
        "eval": ("cnn", lambda c: ["eval", c, "--data-dir", data]),
        "classify": ("cnn", lambda c: ["classify", str(image), "--checkpoint", c]),
        "project": ("cnn", lambda c: ["project", "--checkpoint", c, "--data-dir", data,
                                      "--method", "pca", "--per-class", "2"]),
        "reconstruct": ("vae", lambda c: ["reconstruct", str(faces), "-r", "--checkpoint", c,
                                          "--out", str(root / "out")]),
        "fuse": ("vae", lambda c: ["fuse", str(face), str(face), "--checkpoint", c,
                                   "--out", str(root / "fused.png")]),
    }


@pytest.mark.parametrize("command", ["eval", "classify", "project", "reconstruct", "fuse"])
def test_commands_refuse_damaged_checkpoints_without_running_them(
        command: str, checkpoint_commands: dict, cnn: dict, vae: dict, tmp_path: Path):
    kind, args = checkpoint_commands[command]
    good, other = (cnn["checkpoint"], vae["checkpoint"]) if kind == "cnn" else (
        vae["checkpoint"], cnn["checkpoint"])
    marker = tmp_path / "payload-ran"
    for name, (path, reason) in damaged_checkpoints(tmp_path, good, other, marker).items():
        result = runner.invoke(app, [*args(str(path)), "--device", "cpu"], env=cnn["env"])
        assert result.exit_code == 2, (name, result.output)
        (line,) = _error_lines(result.stderr, "error: ")
        assert str(path) in line and reason in line, (name, line)
        assert not marker.exists(), f"the {name} checkpoint ran its code"


def test_resume_refuses_a_damaged_last_checkpoint(cnn: dict, tmp_path: Path):
    env = {"FMTOOL_HOME": str(tmp_path / "home")}
    base = ["train", "cnn", "--data-dir", str(cnn["data"]), "--width", "0.125", "--batch-size",
            "16", "--precision", "fp32", "--device", "cpu", "--name", "r"]
    assert runner.invoke(app, [*base, "--epochs", "1"], env=env).exit_code == 0
    last = tmp_path / "home/data/runs/cnn/r/last.pt"
    marker = tmp_path / "payload-ran"
    last.write_bytes(_torch_bytes({"format_version": 1, "meta": CodePayload(marker), "model": {}}))
    result = runner.invoke(app, [*base, "--resume", "--epochs", "2"], env=env)
    assert result.exit_code == 2 and not marker.exists()
    line = _final_error(result.stderr)
    assert line.startswith(f"error: {last} ") and "could run code" in line


# -- data sets ------------------------------------------------------------------------------

def _fashion_variants(root: Path) -> dict[str, tuple[Path, str]]:
    """name -> (a --data-dir that is broken that way, what the message must say)."""
    source = synthetic_fashion(root / "good", train=20, test=10)
    variants: dict[str, tuple[Path, str]] = {"missing folder": (root / "nowhere", "does not exist")}

    def variant(name: str, change, reason: str) -> None:
        folder = root / name.replace(" ", "-")
        folder.mkdir()
        for file in source.iterdir():
            (folder / file.name).write_bytes(file.read_bytes())
        change(folder)
        variants[name] = (folder, reason)

    variant("partial", lambda f: (f / "t10k-labels-idx1-ubyte.gz").unlink(),
            "lacks t10k-labels-idx1-ubyte")
    variant("not gzip, not IDX", lambda f: (f / "train-images-idx3-ubyte.gz").write_bytes(
        b"<html>404 Not Found</html>"), "not an IDX file")
    variant("truncated gzip", lambda f: (f / "train-labels-idx1-ubyte.gz").write_bytes(
        (f / "train-labels-idx1-ubyte.gz").read_bytes()[:30]), "could not be read")
    variant("truncated data", lambda f: (f / "t10k-images-idx3-ubyte.gz").write_bytes(
        gzip.compress(gzip.decompress((f / "t10k-images-idx3-ubyte.gz").read_bytes())[:-100])),
        "truncated")
    variant("images and labels disagree", lambda f: write_idx(
        f / "train-labels-idx1-ubyte.gz", np.zeros(7, np.uint8)), "do not match")
    return variants


def test_broken_fashion_data_gives_one_clear_line(tmp_path: Path):
    for name, (folder, reason) in _fashion_variants(tmp_path).items():
        result = runner.invoke(app, ["train", "cnn", "--data-dir", str(folder), "--epochs", "1",
                                     "--width", "0.125", "--device", "cpu"])
        assert result.exit_code == 2, (name, result.output)
        line = _final_error(result.stderr)
        assert reason in line and str(folder) in line, (name, line)
        assert not list((tmp_path / "fmtool-home").rglob("*.pt"))


def test_broken_fashion_data_through_the_environment_variable(tmp_path: Path, cnn: dict):
    env = {**cnn["env"], "FMTOOL_FASHION_DIR": str(tmp_path / "gone")}
    result = runner.invoke(app, ["eval", str(cnn["checkpoint"]), "--device", "cpu"], env=env)
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: Fashion-MNIST folder {tmp_path / 'gone'} does not exist"


def test_empty_image_folders_give_one_clear_line(vae: dict, tmp_path: Path):
    empty = tmp_path / "empty"
    (empty / "Person_0").mkdir(parents=True)
    (empty / "notes.txt").write_text("no faces here")
    runs = [
        ["train", "vae", "--data-dir", str(empty), "--epochs", "1", "--image-size", "32",
         "--device", "cpu"],
        ["reconstruct", str(empty), "--checkpoint", str(vae["checkpoint"]), "--out",
         str(tmp_path / "out"), "--device", "cpu"],
        ["fuse", "--group-a", str(empty), "--group-b", str(empty), "--checkpoint",
         str(vae["checkpoint"]), "--out", str(tmp_path / "x.png"), "--device", "cpu"],
    ]
    for args in runs:
        result = runner.invoke(app, args, env=vae["env"])
        assert result.exit_code == 2, (args[0], result.output)
        line = _final_error(result.stderr)
        assert re.search(r"no (readable )?images", line) and str(empty) in line, (args[0], line)
