"""Every example of docs/python-api.md runs as written: its ```python blocks, in order, as one
Python session, in a folder holding the files the page names."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from tests.helpers.paths import REPO

PAGE = REPO / "docs" / "python-api.md"


def python_blocks(page: Path) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", page.read_text(), flags=re.S | re.M)


@pytest.fixture
def example_folder(tmp_path: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """shirt.jpg, trousers.jpg, face_a.jpg, face_b.jpg and faces/, from the shared data."""
    photos, lfw = shared_data / "clothing-photos", shared_data / "lfw" / "lfw-deepfunneled"
    shutil.copy(sorted((photos / "6_Shirt").glob("*.jpg"))[0], tmp_path / "shirt.jpg")
    shutil.copy(sorted((photos / "1_Trouser").glob("*.jpg"))[0], tmp_path / "trousers.jpg")
    shutil.copy(lfw / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg", tmp_path / "face_a.jpg")
    shutil.copy(lfw / "AJ_Lamas" / "AJ_Lamas_0001.jpg", tmp_path / "face_b.jpg")
    (tmp_path / "faces").mkdir()
    for face in sorted((lfw / "Aaron_Peirsol").glob("*.jpg")):
        shutil.copy(face, tmp_path / "faces" / face.name)
    monkeypatch.setenv("FMTOOL_FASHION_DIR", str(shared_data / "fashion-mnist"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_page_has_an_example_of_every_call():
    code = "\n".join(python_blocks(PAGE))
    for call in ("CNN.load(", ".classify(", ".evaluate(", ".project(", "CNN.train(",
                 ".encode(", ".decode(", ".reconstruct(", ".fuse(", "CNNConfig.from_dict(",
                 ".export("):
        assert call in code, call


def test_every_example_runs(example_folder: Path, capsys: pytest.CaptureFixture):
    session: dict = {"__name__": "docs_example"}
    for number, block in enumerate(python_blocks(PAGE), start=1):
        exec(compile(block, f"{PAGE.name}, example {number}", "exec"), session)
    printed = capsys.readouterr().out
    assert "CNNConfig(width=0.375, image_size=28, dropout=0.0, variant='text', " in printed
    assert "('epochs', 1, 1)\nthe report's measure, best test_acc over epochs" in printed
    assert "could not be read: no such file" in printed
    assert "unknown key 'depth'" in printed and "does not exist" in printed
    assert "width must be a number in [0.05, 4], got -1\n" in printed
    assert (example_folder / "layers.png").is_file() and (example_folder / "halfway.png").is_file()
    assert (example_folder / "fashion.onnx").is_file() and (example_folder / "fashion.pt").is_file()
    assert os.listdir(example_folder / "faces-again" / "images")
