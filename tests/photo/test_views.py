"""Photos become what Fashion-MNIST's pipeline would have made of them, and odd files stay
one file's problem.

A synthetic "photo" is a known item, scaled up, darkened onto a light background that is lit
unevenly and shaded on one side, placed off-centre: preprocessing must give the item back.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fmtool.data.images import ImageReadError
from fmtool.photo.views import fashion_item, fashion_views, load_fashion_views
from tests.helpers.fashion import synthetic_fashion
from tests.helpers.photos import ITEMS, photograph


def naive(picture: Image.Image) -> np.ndarray:
    """What classify did before: grayscale, inverted, padded to a square, resized."""
    gray = 255 - np.asarray(picture.convert("L"), np.float32)
    side = max(gray.shape)
    square = np.full((side, side), float(np.median(gray[0])), np.float32)
    top, left = (side - gray.shape[0]) // 2, (side - gray.shape[1]) // 2
    square[top:top + gray.shape[0], left:left + gray.shape[1]] = gray
    return np.asarray(Image.fromarray(square).resize((28, 28)), np.float32)


CASES = [
    ("t-shirt", dict()),
    ("t-shirt", dict(offset=(-80, -30), light=0.7, seed=1)),
    ("trouser", dict(offset=(100, 0), size=10, seed=2)),
    ("trouser", dict(dark_item=False, seed=3)),
    ("dress", dict(offset=(0, 0), light=0.95, seed=4)),
    ("dress", dict(dark_item=False, offset=(-60, 30), size=8, seed=5)),
    # small and off-centre: GrabCut's start, the central rectangle, finds the background here
    ("t-shirt", dict(offset=(-150, -110), size=4, seed=7)),
    # ... and here the shadow, a darker patch inside that rectangle, instead of the item
    ("t-shirt", dict(offset=(-120, 0), size=5, seed=7)),
]


@pytest.mark.parametrize("name,setting", CASES)
def test_a_photographed_item_comes_back(name: str, setting: dict):
    item = ITEMS[name]
    picture = photograph(item, **setting)
    got = fashion_item(picture).astype(np.float32)
    assert np.abs(got - item).mean() < 20, "the item, light on black, filling the frame"
    assert np.abs(naive(picture) - item).mean() > 60, "the case is hard for plain inversion"
    rows, cols = np.nonzero(got > 64)
    want_rows, want_cols = np.nonzero(item > 64)
    assert abs(rows.min() - want_rows.min()) <= 1 and abs(rows.max() - want_rows.max()) <= 1
    assert abs(cols.min() - want_cols.min()) <= 1 and abs(cols.max() - want_cols.max()) <= 1


def test_a_photo_is_prepared_nine_ways_starting_with_fashion_items_picture():
    """Three GrabCut starts, each at three item sizes: every view is still the item."""
    picture = photograph(ITEMS["dress"], seed=4)
    views = fashion_views(picture)
    assert views.shape == (9, 28, 28) and views.dtype == np.uint8
    assert np.array_equal(views[0], fashion_item(picture))
    for start in range(0, 9, 3):
        for view, side in zip(views[start:start + 3], (28, 26, 24)):
            rows, _ = np.nonzero(view > 64)
            assert abs(rows.max() - rows.min() + 1 - side) <= 1  # the dress is taller than wide
    for other_start in (views[3], views[6]):  # a clean photo: every start finds the same dress
        assert np.abs(other_start.astype(float) - views[0]).mean() < 5


def test_the_views_start_grabcut_at_three_margins(monkeypatch: pytest.MonkeyPatch):
    from fmtool.photo import segmentation

    started, rectangle = [], segmentation.central_rectangle

    def recorded(height: int, width: int, margin: float = segmentation.START_MARGIN) -> np.ndarray:
        started.append(margin)
        return rectangle(height, width, margin)

    monkeypatch.setattr(segmentation, "central_rectangle", recorded)
    fashion_views(photograph(ITEMS["t-shirt"]))
    assert started == [0.1, 0.05, 0.15]


def test_a_batch_gives_each_photo_the_answer_it_gets_alone(tmp_path: Path):
    """Photos (nine views), a Fashion-MNIST image (one) and a broken file in one batch: the
    logits are split back per file, in order."""
    from fmtool import CNN
    from fmtool.data.fashion import load_from_dir

    cnn = CNN.load("builtin", device="cpu")
    photograph(ITEMS["dress"], seed=4).save(tmp_path / "dress.png")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    fashion = load_from_dir(synthetic_fashion(tmp_path / "fashion", train=20, test=10))
    Image.fromarray(fashion.test_images[0].numpy()).save(tmp_path / "fashion.png")
    photograph(ITEMS["trouser"], dark_item=False, seed=3).save(tmp_path / "trouser.png")
    files = [tmp_path / name for name in ("dress.png", "broken.png", "fashion.png", "trouser.png")]
    together = cnn.classify(files, top_k=10)
    assert [result.path for result in together] == files
    assert [result.error is None for result in together] == [True, False, True, True]
    for file, result in zip(files[2:], together[2:]):
        (alone,) = cnn.classify([file], top_k=10)
        assert [label for label, _ in result.predictions] == [label for label, _ in alone.predictions]
        assert [p for _, p in result.predictions] == pytest.approx([p for _, p in alone.predictions],
                                                                   abs=1e-5)
    (dress,) = cnn.classify([files[0]], top_k=10)
    assert [label for label, _ in dress.predictions] == [label for label, _ in together[0].predictions]
    assert [p for _, p in dress.predictions] == pytest.approx([p for _, p in together[0].predictions],
                                                              abs=1e-5)


def test_classify_averages_the_models_logits_over_the_views(tmp_path: Path):
    import torch

    from fmtool import CNN
    from fmtool.cnn.inference import predict_logits

    cnn, cpu = CNN.load("builtin", device="cpu"), torch.device("cpu")
    path = tmp_path / "trouser.png"
    photograph(ITEMS["trouser"], offset=(100, 0), size=10, seed=2).save(path)
    answers = {}
    for single in (False, True):
        views = load_fashion_views(path, single=single)
        logits = predict_logits(cnn.model, torch.from_numpy(views), cnn.config.image_size, cpu,
                                tta_flip=cnn.config.tta_flip)
        (result,) = cnn.classify([path], top_k=10, single_view=single)
        answers[single] = dict(result.predictions)
        expected = logits.mean(0).softmax(0)
        for index, name in enumerate(cnn.class_names):
            assert answers[single][name] == pytest.approx(expected[index].item(), abs=1e-6)
    assert len(load_fashion_views(path)) == 9
    assert answers[False] != answers[True]


def test_fashion_mnist_images_pass_through_unchanged(tmp_path: Path):
    """A Fashion-MNIST image saved as PNG is already light on black: it comes back as it was,
    so `classify` and `eval` see the same pixels."""
    from fmtool.data.fashion import load_from_dir

    data = load_from_dir(synthetic_fashion(tmp_path / "fashion", train=20, test=10))
    for index, image in enumerate(data.test_images.numpy()):
        path = tmp_path / f"{index}.png"
        Image.fromarray(image).save(path)
        assert np.array_equal(load_fashion_views(path), image[None])  # one view: nothing to guess


def test_a_wide_strip_costs_what_its_pixels_cost(tmp_path: Path):
    """A 1 x 100,000 PNG is 100 KB of pixels; squaring it first would ask for 10 GB."""
    path = tmp_path / "strip.png"
    Image.fromarray(np.full((1, 100_000), 200, np.uint8)).save(path)
    assert load_fashion_views(path).shape[1:] == (28, 28)


@pytest.mark.parametrize("mode,suffix", [("LAB", ".tif"), ("YCbCr", ".tif"), ("CMYK", ".tif"),
                                         ("I", ".tif"), ("F", ".tif"), ("1", ".png")])
def test_uncommon_colour_modes_are_read(tmp_path: Path, mode: str, suffix: str):
    """CIELAB, YCbCr, CMYK, 32-bit integer and float, and 1-bit pictures decode to the picture
    that was saved (not another one, its channels swapped or inverted) and give the item that
    picture gives as a plain PNG. The photo is tinted so that its three channels differ."""
    from fmtool.data.images import open_image, to_rgb_array

    grey = np.asarray(photograph(ITEMS["dress"], seed=6).resize((120, 90)), np.float32)
    picture = Image.fromarray((grey * np.array([1.0, 0.7, 0.4], np.float32)).astype(np.uint8))
    # what the mode can hold of the picture: its colours, its grey (I, F), its dither (1)
    shown = {"I": "L", "F": "L", "1": "1"}.get(mode, "RGB")
    reference = picture.convert(shown).convert("RGB")
    reference.save(tmp_path / "reference.png")
    path = tmp_path / f"dress{suffix}"
    picture.convert(mode).save(path)

    decoded = np.rint(to_rgb_array(open_image(path)) * 255).astype(np.int16)
    expected = np.asarray(reference, np.int16)
    assert decoded.shape == expected.shape
    assert np.abs(decoded - expected).max() <= 3  # LAB and YCbCr round to a level or so
    if shown == "RGB":  # a decoder that swapped channels would be far off (about 78 levels)
        assert np.abs(decoded[..., ::-1] - expected).mean() > 40

    item, plain = load_fashion_views(path)[0], load_fashion_views(tmp_path / "reference.png")[0]
    assert item.shape == (28, 28) and item.max() == 255 and item[0, 0] == 0
    difference = np.abs(item.astype(np.int16) - plain.astype(np.int16))
    assert difference.mean() < 1 and difference.max() <= 16, (difference.mean(), difference.max())


def test_a_file_that_breaks_preprocessing_is_that_files_error(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch):
    from fmtool.photo import views

    path = tmp_path / "photo.png"
    photograph(ITEMS["t-shirt"]).save(path)

    def broken(rgb: np.ndarray) -> np.ndarray:
        raise np.linalg.LinAlgError("SVD did not converge")

    monkeypatch.setattr(views, "background_model", broken)
    with pytest.raises(ImageReadError, match="cannot be prepared.*SVD did not converge"):
        load_fashion_views(path)
