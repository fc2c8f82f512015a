"""What the hostile-output tests share: tiny checkpoints and a run folder, the commands that
write files (each given its --out), where each puts them, and the fixtures that make a context
for them (import a fixture by name, with the ones it asks for: ctx needs faces, vae and fashion)."""

from __future__ import annotations

import codecs
import json
import os
from pathlib import Path
from typing import Any, Callable

import pytest
import torch
from PIL import Image

from fmtool.cnn.recipes import RECIPES as CNN_RECIPES
from tests.helpers.checkpoints import save_cnn
from tests.helpers.faces import face_image, make_vae_checkpoint
from tests.helpers.fashion import synthetic_fashion

WIDTH = 0.0625


def cnn_checkpoint(path: Path, class_names: list[str] | None = None) -> Path:
    """An untrained tiny CNN, saved as `train cnn` saves one."""
    return save_cnn(path, CNN_RECIPES["cpu"], WIDTH, class_names=class_names)


def cnn_run(home: Path, name: str = "tiny") -> Path:
    """A run folder fmtool made: best.pt and metrics.jsonl (so eval draws the curves too)."""
    folder = home / "data" / "runs" / "cnn" / name
    cnn_checkpoint(folder / "best.pt")
    (folder / "metrics.jsonl").write_text("".join(
        json.dumps({"epoch": e, "train_loss": 2.0 / e, "test_loss": 2.1 / e, "train_acc": 0.1 * e,
                    "test_acc": 0.09 * e}) + "\n" for e in (1, 2)))
    return folder


def fs_name(raw: bytes) -> str:
    """A file name given as bytes (maybe not UTF-8), as Python's os functions spell it."""
    return os.fsdecode(raw)


def unescape(text: str) -> str:
    """Undoes `output.escape` (the rule docs/commands.md's classify section documents)."""
    return os.fsdecode(codecs.escape_decode(text.encode())[0])


def one_error_line(result: Any) -> str:
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output and "\x1b" not in result.stderr
    return lines[0]


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() or p.is_symlink())


def no_temporary_files(root: Path) -> None:
    assert not [p for p in root.rglob(".*.tmp")], "a temporary file was left behind"


@pytest.fixture(scope="module")
def fashion(tmp_path_factory) -> Path:
    # 100 test images: at least 5 of each class, so `project --per-class 2` has no note to add
    return synthetic_fashion(tmp_path_factory.mktemp("fashion"), train=20, test=100)


@pytest.fixture(scope="module")
def vae(tmp_path_factory) -> Path:
    return make_vae_checkpoint(tmp_path_factory.mktemp("vae") / "vae.pt")


@pytest.fixture
def faces(tmp_path: Path) -> Path:
    folder = tmp_path / "faces"
    folder.mkdir()
    for index in range(6):
        face_image(index, 0, size=64).save(folder / f"face {index}.jpg")
    return folder


def png(path: Path, seed: int = 0) -> Path:
    picture = torch.zeros(48, 64, dtype=torch.uint8)
    picture[6 + seed % 10:20, 8:56] = 255
    with open(path, "wb") as handle:
        Image.fromarray(picture.numpy()).save(handle, "PNG")
    return path


# Each command that writes files, given its --out (a file for fuse and project, a folder for
# reconstruct and eval) and any extra options.
def _reconstruct(ctx: dict, out: Path, *extra: str) -> list[str]:
    return ["reconstruct", str(ctx["faces"]), "--checkpoint", str(ctx["vae"]), "--out", str(out),
            "--device", "cpu", *extra]


def _fuse(ctx: dict, out: Path, *extra: str) -> list[str]:
    a, b = sorted(ctx["faces"].glob("*.jpg"))[:2]
    return ["fuse", str(a), str(b), "--steps", "4", "--checkpoint", str(ctx["vae"]),
            "--out", str(out), "--device", "cpu", *extra]


def _eval(ctx: dict, out: Path, *extra: str) -> list[str]:
    return ["eval", str(ctx["run"]), "--data-dir", str(ctx["fashion"]), "--device", "cpu",
            "--out", str(out), *extra]


def _project(ctx: dict, out: Path, *extra: str) -> list[str]:
    return ["project", "--checkpoint", str(ctx["run"]), "--data-dir", str(ctx["fashion"]),
            "--method", "pca", "--per-class", "2", "--layer", "output", "--device", "cpu",
            "--out", str(out), *extra]


COMMANDS: dict[str, Callable[..., list[str]]] = {
    "reconstruct": _reconstruct, "fuse": _fuse, "eval": _eval, "project": _project}
OUT_IS_FOLDER = {"reconstruct": True, "fuse": False, "eval": True, "project": False}


@pytest.fixture
def ctx(tmp_path: Path, faces: Path, vae: Path, fashion: Path, fmtool_home: Path) -> dict:
    return {"faces": faces, "vae": vae, "fashion": fashion, "run": cnn_run(fmtool_home),
            "tmp": tmp_path}


def outputs_of(command: str, out: Path) -> list[Path]:
    """Where each command puts its files for --out `out`."""
    if command == "fuse":
        return [out, out.with_name(out.stem + "_frames")]
    if command == "project":
        return [out, out.with_suffix(".csv")]
    return [out]

