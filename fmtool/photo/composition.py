"""The item picture, once the item is found: light on black, trimmed, squared and centred.

Fashion-MNIST trimmed each product shot to the item, resized its longest side to 28 pixels,
centred it and negated it, so its items are light objects on a black background. A photo's item
becomes the same: its difference from the background model, negated when the item is darker than
what is behind it, over a grey silhouette.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

ITEM_SIDE = 28  # Fashion-MNIST's items fill 28 pixels along their longest side
# Fashion-MNIST items are solid shapes: a white shirt negated from a white studio background is
# still a grey silhouette. A photo's item keeps this much brightness where its colour is close
# to the background's, so its shape survives; its contrast adds the detail above that.
SILHOUETTE = 0.3
# The item's detail is stretched so that this percentile of it reaches white, as every
# Fashion-MNIST image reaches 255; the top one percent (a glint, a label) may clip.
DETAIL_PEAK_PERCENTILE = 99
# The mask's edge is softened by a Gaussian this wide (pixels at the working size), as a
# product shot's anti-aliased outline is, without blurring away a sleeve.
EDGE_SOFTNESS = 0.7
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R BT.601, as Pillow's "L"


def luminance_of(rgb: np.ndarray) -> np.ndarray:
    """[..., 3] colours -> [...] luminance, weighted as Pillow's grey conversion."""
    return rgb @ LUMA_WEIGHTS


def polarity(luminance: np.ndarray, background: np.ndarray, mask: np.ndarray, invert: str) -> bool:
    """True when the item must be negated: `always`; or `auto` and the item is darker than
    the background around it (a dark coat on a light wall); never with `never`."""
    if invert != "auto":
        return invert == "always"
    return float(np.median(luminance[mask] - background[mask])) < 0


def item_picture(luminance: np.ndarray, background: np.ndarray, mask: np.ndarray,
                 invert: str) -> np.ndarray:
    """The item's difference from the background, light on black in [0, 1], over its grey
    silhouette (SILHOUETTE), trimmed to the mask's box; `background` is the background model's
    luminance."""
    from scipy import ndimage

    negate = polarity(luminance, background, mask, invert)
    contrast = background - luminance if negate else luminance - background
    soft = ndimage.gaussian_filter(mask.astype(np.float32), sigma=EDGE_SOFTNESS)
    detail = np.clip(contrast, 0, None)
    peak = float(np.percentile(detail[mask], DETAIL_PEAK_PERCENTILE))
    detail = np.clip(detail / max(peak, 1e-3), 0, 1)
    item = (SILHOUETTE + (1 - SILHOUETTE) * detail) * soft
    rows, cols = np.nonzero(mask)
    return item[rows.min():rows.max() + 1, cols.min():cols.max() + 1]


def centred(item: np.ndarray, side: int, size: int = ITEM_SIDE) -> np.ndarray:
    """A [0, 1] picture resized so its longest side is `side`, centred on a black uint8
    size x size square."""
    height, width = item.shape
    scale = side / max(height, width)
    shape = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = Image.fromarray((item * 255).astype(np.float32), mode="F").resize(
        shape, Image.Resampling.LANCZOS)
    out = np.zeros((size, size), np.float32)
    top, left = (size - shape[1]) // 2, (size - shape[0]) // 2
    out[top:top + shape[1], left:left + shape[0]] = np.asarray(resized)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def square_and_resize(gray: np.ndarray, size: int = ITEM_SIDE) -> np.ndarray:
    """An item picture already light on black: padded to a square with its own background and
    resized (Fashion-MNIST's own images pass through unchanged)."""
    background = int(np.median(np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])))
    height, width = gray.shape
    side = max(height, width)
    square = np.full((side, side), background, dtype=np.uint8)
    top, left = (side - height) // 2, (side - width) // 2
    square[top:top + height, left:left + width] = gray
    resized = Image.fromarray(square).resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(resized, dtype=np.uint8)
