"""User images become Fashion-MNIST-like items: light on dark, square, 28x28, any input mode."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fmtool.data.images import ImageReadError, open_image
from fmtool.photo.composition import SILHOUETTE
from fmtool.photo.views import fashion_item, load_fashion_views


def dark_item_on_white(width: int = 60, height: int = 30) -> np.ndarray:
    picture = np.full((height, width), 250, np.uint8)
    picture[5:-5, 10:-10] = 20
    return picture


def test_light_background_is_inverted_and_padded_to_a_square():
    item = fashion_item(dark_item_on_white(), invert="auto")
    assert item.shape == (28, 28) and item.dtype == np.uint8
    assert item[0, 0] < 30 and item[14, 14] > 200  # background dark, object light
    assert item[3, 14] < 30  # wide picture: padding above the object, aspect kept


def test_invert_says_whether_the_item_is_darker_or_lighter_than_its_background():
    dark_on_white = dark_item_on_white()
    light_on_black = 255 - dark_on_white
    centre = (14, 14)
    shape_only = round(SILHOUETTE * 255) + 2  # the item's silhouette, with no detail on it
    assert fashion_item(dark_on_white, invert="always")[centre] > 200
    assert fashion_item(dark_on_white, invert="never")[centre] <= shape_only  # nothing is lighter than white
    assert fashion_item(light_on_black, invert="auto")[centre] > 200
    assert fashion_item(light_on_black, invert="never")[centre] > 200
    assert fashion_item(light_on_black, invert="always")[centre] <= shape_only
    with pytest.raises(ValueError):
        fashion_item(dark_on_white, invert="sometimes")


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "P", "CMYK", "I;16", "LA"])
def test_every_common_mode_decodes(tmp_path: Path, mode: str):
    gray = Image.fromarray(dark_item_on_white())
    image = gray.convert("RGB").convert(mode) if mode != "I;16" else Image.fromarray(
        dark_item_on_white().astype(np.uint16) * 257)
    path = tmp_path / ("x.jpg" if mode == "CMYK" else "x.png")
    image.save(path)
    item = load_fashion_views(path)[0]
    assert item.shape == (28, 28)
    assert item[14, 14] > 150 and item[0, 0] < 60


def test_exif_rotation_is_applied(tmp_path: Path):
    image = Image.fromarray(dark_item_on_white(60, 30)).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    image.save(tmp_path / "r.jpg", exif=exif)
    assert open_image(tmp_path / "r.jpg").size == (30, 60)


@pytest.mark.parametrize("content,reason", [
    (b"", "not an image"),
    (b"this is text, not a picture", "not an image"),
])
def test_unreadable_files_raise_a_short_reason(tmp_path: Path, content: bytes, reason: str):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(ImageReadError, match=reason):
        open_image(path)


def test_truncated_png_and_missing_paths_are_refused(tmp_path: Path):
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)).save(
        tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="damaged or truncated"):
        open_image(tmp_path / "cut.png")
    with pytest.raises(ImageReadError, match="no such file"):
        open_image(tmp_path / "absent.png")
    with pytest.raises(ImageReadError, match="directory"):
        open_image(tmp_path)


def test_libtiffs_own_lines_never_reach_stderr(tmp_path: Path):
    """A damaged LZW TIFF makes the libtiff inside Pillow print its own error ("Using code not
    yet in table.") besides the one Pillow raises; only fmtool's line for the file remains."""
    import os
    import subprocess
    import sys

    from tests.helpers.paths import REPO

    picture = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8))
    picture.save(tmp_path / "whole.tif", compression="tiff_lzw")
    data = bytearray((tmp_path / "whole.tif").read_bytes())
    data[16:len(data) // 2] = b"\xff" * (len(data) // 2 - 16)  # the strip, not the header
    (tmp_path / "damaged.tif").write_bytes(bytes(data))
    env = {**os.environ, "FMTOOL_HOME": str(tmp_path / "home"), "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "fmtool", "classify", str(tmp_path / "damaged.tif"),
                           "--checkpoint", "builtin"], capture_output=True, text=True, env=env)
    assert done.returncode == 1
    assert done.stderr.splitlines()[1:] == [f"error: {tmp_path / 'damaged.tif'}: damaged or "
                                            "truncated image (decoder error -2)"], done.stderr
