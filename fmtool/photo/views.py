"""A photo's nine views: the item picture made with three GrabCut starts at three item sizes.

A photo's preparation rests on two guesses: where GrabCut starts (the central rectangle's
margin) and how far the item's box reaches (a shadow or a missed sleeve moves it). `classify`
makes each guess three ways and averages the model's logits over the nine pictures, as flip
TTA averages over mirrors.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image
from threadpoolctl import threadpool_limits

from fmtool.choices import Invert
from fmtool.data.images import ImageReadError, prepared, read_image, to_grayscale, to_rgb_array
from fmtool.photo.background import background_model, border_mask
from fmtool.photo.composition import ITEM_SIDE, centred, item_picture, luminance_of, square_and_resize
from fmtool.photo.segmentation import START_MARGIN, item_masks

WORKING_SIDE = 192  # photos are analysed at most this large: enough for a mask, bounded work
DARK_BACKGROUND = 24  # a border this dark (median, 0..255) is already Fashion-MNIST's black
# Each guess is made three ways: where GrabCut starts (a margin of 5, 10 or 15% of each side)
# and how much of the frame the item fills (28, 26 or 24 pixels); a model averaged over the
# nine pictures depends less on either guess than on the first view (10%, 28 pixels) alone.
VIEW_MARGINS = (START_MARGIN, 0.05, 0.15)
VIEW_SCALES = (1.0, 26 / 28, 24 / 28)  # of the longest side; Fashion-MNIST's items fill it


def working_copy(image: Image.Image) -> Image.Image:
    """The picture at most WORKING_SIDE pixels on its longest side (box filter: every source
    pixel counts once, so the work is bounded by the pixels actually present)."""
    longest = max(image.size)
    if longest <= WORKING_SIDE:
        return image
    scale = WORKING_SIDE / longest
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BOX)


def fashion_item(image: Image.Image | np.ndarray, invert: str = "auto",
                 size: int = ITEM_SIDE) -> np.ndarray:
    """A picture of one item -> what Fashion-MNIST's pipeline would have made of it: uint8
    size x size, the item light on black, its longest side filling the frame, centred.

    A photo taken at home has a background (a bed, a floor, a wall, often lit unevenly) instead
    of white, so this first models that background from the border (`background_model`), finds
    the item by the colours inside and outside the picture's central rectangle, as GrabCut does
    (`item_masks`), and takes its difference from the background as its detail
    (`item_picture`): negated when the item is darker than its background (`invert` auto), so
    that it ends up light on black either way, stretched so the item's brightest one percent
    reaches white, over a grey silhouette. A picture whose border is already black and whose
    item is lighter (Fashion-MNIST's own images) is only squared and resized.
    """
    return fashion_views(image, invert, size, margins=VIEW_MARGINS[:1], scales=VIEW_SCALES[:1])[0]


def fashion_views(image: Image.Image | np.ndarray, invert: str = "auto", size: int = ITEM_SIDE,
                  margins: tuple[float, ...] = VIEW_MARGINS,
                  scales: tuple[float, ...] = VIEW_SCALES) -> np.ndarray:
    """`fashion_item`'s picture made with each start margin and item scale: uint8
    [len(margins) * len(scales), size, size], the first being `fashion_item`'s. A picture that
    is already Fashion-MNIST-like (black border) has nothing to guess: one view."""
    invert = Invert.parse(invert, "invert").value
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    rgb = to_rgb_array(working_copy(image))
    luminance = luminance_of(rgb)
    border = border_mask(*luminance.shape)
    if float(np.median(luminance[border])) * 255 <= DARK_BACKGROUND and invert != "always":
        return square_and_resize(to_grayscale(working_copy(image)), size)[None]
    # The colour models are fitted in many small array operations: a second BLAS thread costs
    # more than it gives.
    with threadpool_limits(limits=1):
        background = background_model(rgb)
        masks = item_masks(rgb, background, margins)
    background_luminance = luminance_of(background)
    views = []
    for mask in masks:
        item = item_picture(luminance, background_luminance, mask, invert)
        views += [centred(item, round(size * scale), size) for scale in scales]
    return np.stack(views)


def load_fashion_views(path: Path, invert: str = "auto", single: bool = False) -> np.ndarray:
    """The full path from a file on disk to its 28x28 uint8 views (`prepare_fashion_views`), or
    ImageReadError: whatever goes wrong with one file is that file's error, never the batch's."""
    return read_image(path, partial(_views, invert=invert, single=single))


def prepare_fashion_views(image: Image.Image, invert: str = "auto",
                          single: bool = False) -> np.ndarray:
    """A decoded picture's views, or ImageReadError when it cannot be prepared."""
    return prepared(image, partial(_views, invert=invert, single=single))


def _views(image: Image.Image, invert: str, single: bool) -> np.ndarray:
    """`fashion_views`; with `single` only the first (`fashion_item`)."""
    return fashion_item(image, invert=invert)[None] if single else fashion_views(image, invert)


def load_many_fashion_views(paths: list[Path], invert: str = "auto", single: bool = False,
                            workers: int | None = None) -> list[np.ndarray | ImageReadError]:
    """`load_fashion_views` for each of `paths`, in order: its views, or the ImageReadError that
    is that file's answer. A photo's preparation is one process's work from start to end, so
    the photos are shared among `workers` processes (default: the CPUs this process may use);
    each photo's views are the ones it gets alone."""
    invert = Invert.parse(invert, "invert").value  # a wrong choice is the caller's, not a file's
    workers = min(workers or usable_cpus(), len(paths))
    if "fork" not in multiprocessing.get_all_start_methods():
        workers = 1
    prepare = partial(_views_or_error, invert=invert, single=single)
    if workers <= 1:
        return [prepare(path) for path in paths]
    # fork: the workers need nothing the parent has not loaded, and `python -m fmtool` must not
    # be imported again as a fresh process's main module (spawn would run the CLI there)
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        return list(pool.map(prepare, paths))


def _views_or_error(path: Path, invert: str, single: bool) -> np.ndarray | ImageReadError:
    try:
        return load_fashion_views(path, invert, single)
    except ImageReadError as exc:
        return exc


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity where the system says, else all)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
