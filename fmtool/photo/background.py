"""The background a photo's item stands on, modelled from the picture's border.

A photo taken at home has a wall, a bed or a floor behind the item, often lit unevenly. The
border of the picture is mostly that background, so a smooth surface fitted to it says what the
background would look like under the item too.
"""

from __future__ import annotations

import numpy as np

# The border band is this share of the picture's shorter side: wide enough to hold a few
# thousand pixels at the working size, narrow enough that a centred item rarely reaches it.
BORDER_SHARE = 0.04
# Rounds of the robust fit: the first finds the surface, the next drop what it explains badly
# (a sleeve reaching the edge); more rounds no longer change which pixels are dropped.
FIT_ROUNDS = 3
# A border pixel is kept while its residual is below this many robust spreads (the median
# absolute residual scaled to a normal's sigma) ...
OUTLIER_SPREADS = 2.5
# ... plus this much (on 0..1 colours), so a very clean border does not drop its own noise.
OUTLIER_FLOOR = 0.02
# Fewer border pixels than this left (six coefficients per channel) cannot be trusted: the fit
# then uses the whole border again.
MIN_KEPT = 12


def border_mask(height: int, width: int) -> np.ndarray:
    """The picture's outer band, BORDER_SHARE of its shorter side wide (at least one pixel)."""
    band = max(1, round(BORDER_SHARE * min(height, width)))
    mask = np.zeros((height, width), bool)
    mask[:band], mask[-band:], mask[:, :band], mask[:, -band:] = True, True, True, True
    return mask


def background_model(rgb: np.ndarray) -> np.ndarray:
    """The colour the background would have under the item: a smooth surface (quadratic in x
    and y, per channel) fitted to the picture's border, so light falling across a wall, a shadow
    at one side or a floor's gradient are modelled rather than mistaken for the item. Border
    pixels the fit explains badly (a sleeve reaching the edge) are dropped and the fit redone."""
    height, width, _ = rgb.shape
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    y, x = rows / max(height - 1, 1) - 0.5, cols / max(width - 1, 1) - 0.5
    terms = np.stack([np.ones_like(x), x, y, x * x, y * y, x * y], axis=-1)
    border = border_mask(height, width)
    design, target = terms[border], rgb[border]
    keep = np.ones(len(target), bool)
    for _ in range(FIT_ROUNDS):
        coefficients, *_ = np.linalg.lstsq(design[keep], target[keep], rcond=None)
        residual = np.linalg.norm(design @ coefficients - target, axis=1)
        spread = np.median(residual[keep]) * 1.4826 + 1e-3
        keep = residual < OUTLIER_SPREADS * spread + OUTLIER_FLOOR
        if keep.sum() < MIN_KEPT:
            keep[:] = True
    return (terms @ coefficients).astype(np.float32)
