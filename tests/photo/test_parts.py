"""The parts of the photo pipeline (fmtool.photo) one by one, and the one alpha helper of decoding.

The whole pipeline is tested on synthetic photographs in test_photos.py; here each part is held
to what it promises: the background surface, the colour models against scikit-learn's, the
batched GrabCut starts against the same starts run alone, polarity, the item picture's size.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from PIL import Image

from fmtool.data.images import on_white, to_grayscale, to_rgb_array
from fmtool.photo.background import background_model, border_mask
from fmtool.photo.composition import centred, item_picture, polarity
from fmtool.photo.jitter import photo_jitter
from fmtool.photo.mixture import features, fit_mixtures
from fmtool.photo.segmentation import central_rectangle, refine_masks
from fmtool.photo.views import fashion_views
from tests.helpers.photos import ITEMS, photograph


@pytest.mark.parametrize("mode", ["RGBA", "LA", "PA"])
def test_transparency_is_composited_onto_white_in_every_decoder(mode: str):
    rgba = np.zeros((4, 6, 4), np.uint8)
    rgba[..., 0] = 200  # red, fully transparent on the left half, opaque on the right
    rgba[:, 3:, 3] = 255
    image = Image.fromarray(rgba, "RGBA").convert(mode)
    white = np.asarray(on_white(image).convert("RGB"))
    assert (white[:, :3] == 255).all() and (white[:, 3:] < 255).any()
    assert (to_grayscale(image)[:, :3] == 255).all()
    assert (to_rgb_array(image)[:, :3] == 1.0).all()


def test_a_picture_without_transparency_is_left_as_it_is():
    image = Image.new("RGB", (5, 5), (10, 20, 30))
    assert on_white(image) is image


def test_the_background_surface_is_found_under_an_item_that_reaches_the_border():
    height, width = 90, 120
    rows, cols = np.mgrid[0:height, 0:width]
    y, x = rows / (height - 1) - 0.5, cols / (width - 1) - 0.5
    surface = np.stack([0.6 + 0.2 * x - 0.1 * y * y, 0.5 + 0.1 * x * y, 0.7 - 0.15 * y], -1)
    picture = surface.copy()
    picture[20:90, 40:80] = 0.1  # a dark item, its lower end running off the picture
    model = background_model(picture.astype(np.float32))
    assert np.abs(model - surface).max() < 0.01
    assert border_mask(height, width).sum() < 0.2 * height * width


def _clusters(count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 0.3, (4, 3))
    spread = rng.normal(0, 0.05, (count, 3)) * rng.uniform(0.3, 2.0, (count, 1))
    return (centres[rng.integers(0, 4, count)] + spread).astype(np.float32)


def test_the_batched_colour_models_are_scikit_learns():
    """Models of different sizes fitted together (the smaller ones padded) match scikit-learn's
    GaussianMixture fitted one by one with the same settings, up to float32 rounding."""
    from sklearn.mixture import GaussianMixture

    samples = [_clusters(count, seed) for seed, count in enumerate((4000, 2500, 900, 4000))]
    batched = fit_mixtures(samples, components=4, reg_covar=1e-3)
    probe = np.random.default_rng(9).normal(0, 0.4, (3000, 3)).astype(np.float32)
    scores = batched.log_densities(features(probe))
    for index, sample in enumerate(samples):
        reference = GaussianMixture(4, random_state=0, reg_covar=1e-3).fit(sample)
        order = [int(np.argmin(((batched.means[index] - mean) ** 2).sum(1))) for mean in reference.means_]
        assert sorted(order) == [0, 1, 2, 3]
        assert np.abs(batched.means[index][order] - reference.means_).max() < 1e-4
        assert np.abs(batched.covariances[index][order] - reference.covariances_).max() < 1e-4
        assert np.abs(batched.weights[index][order] - reference.weights_).max() < 1e-4
        assert np.abs(scores[index] - reference.score_samples(probe)).max() < 1e-2


def test_grabcut_starts_refined_together_find_what_each_finds_alone():
    picture = photograph(ITEMS["t-shirt"]).resize((192, 144), Image.Resampling.BOX)
    rgb = to_rgb_array(picture)
    background = background_model(rgb)
    starts = [central_rectangle(144, 192, margin) for margin in (0.1, 0.05, 0.15)]
    together = refine_masks(rgb, background, starts)
    for start, mask in zip(starts, together):
        assert np.array_equal(mask, refine_masks(rgb, background, [start])[0])
        assert 0.05 < mask.mean() < 0.5 and not np.array_equal(mask, start)


def test_polarity_follows_invert_and_the_items_brightness():
    background = np.full((10, 10), 0.8, np.float32)
    dark_item, mask = background.copy(), np.zeros((10, 10), bool)
    mask[3:7, 3:7] = True
    dark_item[mask] = 0.2
    assert polarity(dark_item, background, mask, "auto")
    assert not polarity(1 - dark_item, 1 - background, mask, "auto")
    assert polarity(1 - dark_item, 1 - background, mask, "always")
    assert not polarity(dark_item, background, mask, "never")


def test_the_item_picture_is_trimmed_to_its_mask_and_fills_the_side_it_is_given():
    luminance = np.full((40, 60), 0.9, np.float32)
    mask = np.zeros((40, 60), bool)
    mask[10:30, 15:25] = True  # 20 tall, 10 wide
    luminance[mask] = 0.1
    item = item_picture(luminance, np.full_like(luminance, 0.9), mask, "auto")
    assert item.shape == (20, 10) and item.max() == pytest.approx(1.0, abs=0.05)
    for side in (28, 24):
        picture = centred(item, side, 28)
        rows, cols = np.nonzero(picture > 64)
        assert picture.shape == (28, 28) and rows.max() - rows.min() + 1 == side
        assert abs((cols.min() + cols.max()) / 2 - 13.5) <= 1  # centred


# sha256 (first 16 hex digits) of the nine views of synthetic photographs (tests/helpers/photos.py):
# the same pictures as before the colour models were batched (scikit-learn's GaussianMixture,
# one at a time), so any change to what a photo becomes shows here.
PINNED = [
    ("t-shirt", dict(), "640959c32d7b4aac"),
    ("trouser", dict(dark_item=False, seed=3), "80b411934b55e465"),
    ("t-shirt", dict(offset=(-120, 0), size=5, seed=7), "bbc07e956d41d130"),
]


@pytest.mark.parametrize("name,setting,digest", PINNED)
def test_the_pictures_of_a_photo_are_pinned(name: str, setting: dict, digest: str):
    views = fashion_views(photograph(ITEMS[name], **setting))
    assert views.shape == (9, 28, 28)
    assert hashlib.sha256(views.tobytes()).hexdigest()[:16] == digest


def test_photo_jitter_keeps_the_range_and_leaves_images_alone_at_probability_zero():
    torch.manual_seed(0)
    x = torch.rand(16, 1, 28, 28)
    assert torch.equal(photo_jitter(x, 0.0), x)
    jittered = photo_jitter(x, 1.0)
    assert jittered.shape == x.shape and 0 <= jittered.min() and jittered.max() <= 1
    assert not torch.equal(jittered, x)


def test_many_photos_prepared_in_worker_processes_are_each_what_it_is_alone(tmp_path):
    from fmtool.data.images import ImageReadError
    from fmtool.photo.views import load_fashion_views, load_many_fashion_views

    photograph(ITEMS["dress"], seed=4).resize((160, 120)).save(tmp_path / "dress.png")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    photograph(ITEMS["trouser"], dark_item=False, seed=3).resize((160, 120)).save(tmp_path / "trouser.png")
    paths = [tmp_path / name for name in ("dress.png", "broken.png", "trouser.png")]
    for workers in (1, 2):
        prepared = load_many_fashion_views(paths, workers=workers)
        assert len(prepared) == len(paths)
        assert isinstance(prepared[1], ImageReadError) and "not an image" in str(prepared[1])
        for path, views in zip(paths[::2], prepared[::2]):
            assert np.array_equal(views, load_fashion_views(path))
    with pytest.raises(ValueError):
        load_many_fashion_views(paths, invert="sometimes")
