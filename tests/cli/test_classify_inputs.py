"""`fmtool classify` reads files, folders (-r for their sub-folders) and lists of paths on
standard input (- , NUL-separated with -0), always in a stable order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from fmtool.cli.app import app
from tests.helpers.checkpoints import save_cnn

pytestmark = pytest.mark.usefixtures("one_thread")
runner = CliRunner()


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """shop/b.png, shop/a.png, shop/notes.txt, shop/.hidden.png, shop/racks/c.png, and a
    file whose name holds a newline."""
    picture = Image.fromarray(np.zeros((28, 28), np.uint8))
    for name in ("b.png", "a.png", ".hidden.png", "racks/c.png", "odd\nname.png"):
        (tmp_path / "shop" / name).parent.mkdir(parents=True, exist_ok=True)
        picture.save(tmp_path / "shop" / name)
    (tmp_path / "shop" / "notes.txt").write_text("not a picture")
    return tmp_path / "shop"


def classify(*args: object, stdin: bytes | None = None, checkpoint: Path):
    return runner.invoke(app, ["classify", *map(str, args), "--checkpoint", str(checkpoint),
                               "--json"], input=stdin)


def paths(result) -> list[str]:
    import json

    assert result.exit_code == 0, result.output
    return [Path(item["path"]).name for item in json.loads(result.stdout)]


def test_a_folder_gives_its_images_in_sorted_order_and_r_its_sub_folders_too(shop: Path,
                                                                             tmp_path: Path):
    checkpoint = save_cnn(tmp_path / "cnn.pt")
    assert paths(classify(shop, checkpoint=checkpoint)) == ["a.png", "b.png", "odd\nname.png"]
    assert paths(classify(shop, "-r", checkpoint=checkpoint)) == [
        "a.png", "b.png", "odd\nname.png", "c.png"]
    assert paths(classify(shop / "b.png", shop, checkpoint=checkpoint))[:2] == ["b.png", "a.png"]


def test_dash_reads_paths_from_standard_input_one_a_line_or_nul_separated(shop: Path,
                                                                          tmp_path: Path):
    checkpoint = save_cnn(tmp_path / "cnn.pt")
    lines = f"{shop / 'b.png'}\n{shop / 'a.png'}\n".encode()
    assert paths(classify("-", stdin=lines, checkpoint=checkpoint)) == ["b.png", "a.png"]
    nul = b"\0".join(bytes(shop / name) for name in ("odd\nname.png", "a.png")) + b"\0"
    assert paths(classify("-0", "-", stdin=nul, checkpoint=checkpoint)) == ["odd\nname.png", "a.png"]


@pytest.mark.parametrize("args, stdin, message", [
    (["-0", "a.png"], None, "--null (-0) reads NUL-separated paths from standard input; give - too"),
    (["-", "-"], b"a.png\n", "- (standard input) can be given once"),
    (["-"], b"", "no paths were given on standard input"),
    (["empty"], None, "no images found in"),
])
def test_input_mistakes_are_one_line(args: list[str], stdin: bytes | None, message: str,
                                     tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "empty").mkdir()
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["classify", *args, "--checkpoint", str(save_cnn(tmp_path / "c.pt"))],
                           input=stdin)
    assert result.exit_code == 2 and result.stderr.startswith(f"error: {message}"), result.output
    assert result.stderr.count("\n") == 1
