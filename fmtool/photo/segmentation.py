"""Where the item is: masks found from colour, as GrabCut does, started from the picture's
central rectangle (or from what stands out most from the background when that start fails).
"""

from __future__ import annotations

import warnings

import numpy as np

from fmtool.photo.background import border_mask


def largest_region(mask: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    labels, count = ndimage.label(mask)
    if count == 0:
        return mask
    sizes = ndimage.sum(mask, labels, index=np.arange(1, count + 1))
    return labels == int(np.argmax(sizes)) + 1


# GrabCut's start: the item is somewhere inside the picture's central rectangle. Starting
# instead from what stands out most from the background (`standout_region`) led the colour models to
# the item's boldest part, a print or a dark collar: on the 200 shared photos 131 right, against
# 138-144 from a central rectangle (margins 5-15%, 3-6 rounds; 143 at the 10% and 4 rounds kept;
# the bundled model of the time, nothing else changed).
START_MARGIN = 0.1  # of each side
REFINE_ROUNDS = 4  # colour-model rounds from that start
# A soft shadow inside that rectangle is darker background, which the colour models may give to
# the item; what differs from the background model by less than this share of the item's
# typical (median) difference is dropped. 0.2 and 0.3 both gave 140-141 of the 200 photos
# (139 with the off-centre check of `item_masks`, added after).
FAINT = 0.3
COLOUR_COMPONENTS = 4  # Gaussians per colour model: a print, a shadow, a fold, a stripe
COLOUR_SAMPLES = 4000  # pixels each model is fitted on (bounded work whatever the photo)


def otsu(values: np.ndarray) -> float:
    """The threshold that best splits `values` (in [0, 1]) into two classes."""
    histogram, edges = np.histogram(values, bins=128, range=(0.0, max(float(values.max()), 1e-6)))
    weights = histogram.astype(np.float64) / max(histogram.sum(), 1)
    centres = (edges[:-1] + edges[1:]) / 2
    below = np.cumsum(weights)
    mean_below = np.cumsum(weights * centres)
    total = mean_below[-1]
    between = (total * below - mean_below) ** 2 / np.maximum(below * (1 - below), 1e-12)
    return float(centres[int(np.argmax(between))])


def standout_region(difference: np.ndarray) -> np.ndarray:
    """What stands out most from the background: a difference above Otsu's threshold and above
    the border's own variation, cleaned, holes filled, the largest region kept; empty when
    nothing does. Often only the item's boldest part, but wherever the item is."""
    from scipy import ndimage

    noise = float(np.percentile(difference[border_mask(*difference.shape)], 75))
    mask = difference > max(otsu(difference), 2.0 * noise + 0.03)
    mask = ndimage.binary_closing(ndimage.binary_opening(mask, iterations=1), iterations=3)
    return largest_region(ndimage.binary_fill_holes(mask))


def central_rectangle(height: int, width: int, margin: float = START_MARGIN) -> np.ndarray:
    """The picture less `margin` of its height and width at each side, as a mask."""
    mask = np.zeros((height, width), bool)
    top, left = round(margin * height), round(margin * width)
    mask[top:height - top, left:width - left] = True
    return mask


def refine_mask(rgb: np.ndarray, background: np.ndarray, mask: np.ndarray,
                rounds: int = REFINE_ROUNDS) -> np.ndarray:
    """The item's mask redrawn from colour, as GrabCut does: a mixture of Gaussians is fitted to
    the colours inside the mask and another to those outside (each colour as its difference
    from the background model), every pixel goes to the likelier one (smoothed over its
    neighbours), and the largest region is kept; repeated `rounds` times. This follows what a
    smooth background surface cannot: a patterned bedspread, a floor's planks, an item that runs
    off the edge of the picture. It stops early, keeping the mask it has, when one side is too
    small to fit or the colours do not separate."""
    from scipy import ndimage
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture

    smooth = ndimage.gaussian_filter(rgb, sigma=(1.0, 1.0, 0))
    pixels = (smooth - background).reshape(-1, 3)
    generator = np.random.default_rng(0)
    for _ in range(rounds):
        inside, outside = np.flatnonzero(mask.reshape(-1)), np.flatnonzero(~mask.reshape(-1))
        if min(len(inside), len(outside)) < max(COLOUR_COMPONENTS * 10, 0.002 * mask.size):
            break
        with warnings.catch_warnings():  # a flat picture has fewer colours than components
            warnings.simplefilter("ignore", ConvergenceWarning)
            models = [GaussianMixture(COLOUR_COMPONENTS, random_state=0, reg_covar=1e-3).fit(
                      pixels[generator.choice(side, min(COLOUR_SAMPLES, len(side)), replace=False)])
                      for side in (inside, outside)]
        odds = models[0].score_samples(pixels) - models[1].score_samples(pixels)
        redrawn = ndimage.gaussian_filter(odds.reshape(mask.shape), 1.0) > 0
        redrawn = ndimage.binary_opening(redrawn, iterations=1)
        redrawn = largest_region(ndimage.binary_fill_holes(redrawn))
        if not 0.002 * mask.size < redrawn.sum() < 0.998 * mask.size:
            break  # the colours did not separate: keep the mask that was
        mask = redrawn
    return mask


def excess(difference: np.ndarray, mask: np.ndarray) -> float:
    """How much more `mask` differs from the background model than the rest of the picture,
    summed over its pixels: large for a whole item, small for a shadow or for one bold spot,
    negative for the background itself."""
    if mask.all():
        return 0.0
    return float((difference[mask] - np.median(difference[~mask])).sum())


def item_masks(rgb: np.ndarray, background: np.ndarray,
               margins: tuple[float, ...] = (START_MARGIN,)) -> list[np.ndarray]:
    """Where the item is, one mask per margin, never empty: GrabCut's colour models
    (`refine_mask`) started from the central rectangle (`margin` in from each side). When what
    they found misses what stands out most (`standout_region`) or differs from the background model no
    more than the rest of the picture (a small item off-centre, where the rectangle holds a
    shadow or only background), they are started from what stands out too (once for all
    margins), and the mask with the larger `excess` is kept. Then what barely differs from the
    background model is dropped (FAINT: soft shadows, creases in a bedspread), and the rest
    opened, holes filled, the largest region kept (unless too little is left)."""
    from scipy import ndimage

    smooth = ndimage.gaussian_filter(rgb, sigma=(1.5, 1.5, 0))
    difference = np.linalg.norm(smooth - background, axis=2)
    standout = standout_region(difference)
    from_standout: list[np.ndarray] = []  # its colour models, fitted when first needed
    masks = []
    for margin in margins:
        mask = refine_mask(rgb, background, central_rectangle(*difference.shape, margin))
        missed = (mask & standout).sum() < 0.5 * standout.sum()  # what stands out most
        took_background = mask.all() or np.median(difference[mask]) <= np.median(difference[~mask])
        if standout.any() and (missed or took_background):
            from_standout = from_standout or [refine_mask(rgb, background, standout)]
            mask = max(mask, from_standout[0], key=lambda found: excess(difference, found))
        kept = mask & (difference > FAINT * np.median(difference[mask]))
        kept = largest_region(ndimage.binary_fill_holes(ndimage.binary_opening(kept)))
        masks.append(kept if kept.sum() > 0.002 * kept.size else mask)
    return masks
