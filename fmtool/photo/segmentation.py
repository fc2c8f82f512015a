"""Where the item is: masks found from colour, as GrabCut does, started from the picture's
central rectangle (or from what stands out most from the background when that start fails).
"""

from __future__ import annotations

import numpy as np

from fmtool.photo.background import border_mask
from fmtool.photo.mixture import features, fit_mixtures

# GrabCut's start: the item is somewhere inside the picture's central rectangle, this share of
# each side in from the edge. Starting from what stands out most from the background instead
# leads the colour models to the item's boldest part (a print, a dark collar), so that start is
# only a fallback (`item_masks`).
START_MARGIN = 0.1
# Colour-model rounds from a start: enough for the mask to settle from a rectangle onto the item;
# fewer and a sleeve outside the rectangle is not yet reached, more change little.
REFINE_ROUNDS = 4
# A soft shadow inside the rectangle is darker background, which the colour models may give to
# the item; what differs from the background model by less than this share of the item's
# typical (median) difference is dropped, which keeps faint fabric but not shade.
FAINT = 0.3
COLOUR_COMPONENTS = 4  # Gaussians per colour model: a print, a shadow, a fold, a stripe
COLOUR_SAMPLES = 4000  # pixels each model is fitted on (bounded work whatever the photo)
# Each colour model needs this many pixels per component for its covariances to mean anything.
MIN_SAMPLES_PER_COMPONENT = 10
# Covariance floor of the colour models (on 0..1 colours, about 3% in each channel): a flat
# region does not make a Gaussian collapse onto one colour.
COLOUR_REGULARISATION = 1e-3
# A mask, or what is outside it, smaller than this share of the picture is not an item (nor a
# background): a speck the colours picked, or the whole picture.
MIN_SHARE = 0.002
# Blurs, in pixels at the working size: colours are compared on a lightly blurred copy so that
# fabric weave and floor texture do not speckle the mask; the likelihood ratio is smoothed over
# neighbours, as GrabCut's pairwise term does; the difference from the background, which finds
# what stands out and what is faint, is blurred a little more, as it is judged per region.
COLOUR_BLUR = 1.0
ODDS_BLUR = 1.0
DIFFERENCE_BLUR = 1.5
# What stands out is above Otsu's threshold and above this many times the border's typical
# (75th percentile) difference plus a floor on 0..1 colours: the background's own variation
# (texture, noise, left-over light) never stands out.
STANDOUT_NOISE_FACTOR = 2.0
STANDOUT_FLOOR = 0.03
# The colour models' mask misses what stands out when it holds less than this share of it.
MISSED_SHARE = 0.5


def largest_region(mask: np.ndarray) -> np.ndarray:
    """The largest 4-connected region of `mask` (`mask` itself when it has none)."""
    from scipy import ndimage

    labels, count = ndimage.label(mask)
    if count == 0:
        return mask
    return labels == int(np.argmax(np.bincount(labels.ravel())[1:])) + 1


def opened(mask: np.ndarray) -> np.ndarray:
    """`mask` eroded then dilated by the 4-neighbourhood, the picture's outside counting as
    background (scipy's binary_opening with its defaults, in a few whole-array operations)."""
    return _spread(_spread(mask, np.logical_and), np.logical_or)


def _spread(mask: np.ndarray, combine: np.ufunc) -> np.ndarray:
    padded = np.pad(mask, 1)
    neighbours = (padded[:-2, 1:-1], padded[2:, 1:-1], padded[1:-1, :-2], padded[1:-1, 2:])
    return combine.reduce([mask, *neighbours])


def filled(mask: np.ndarray) -> np.ndarray:
    """`mask` with its holes filled: every background region (4-connected) that does not reach
    the picture's edge joins it (scipy's binary_fill_holes, by labelling instead of growing)."""
    from scipy import ndimage

    background, count = ndimage.label(~mask)
    reaches_edge = np.zeros(count + 1, bool)
    for edge in (background[0], background[-1], background[:, 0], background[:, -1]):
        reaches_edge[edge] = True
    return ~reaches_edge[background] | mask


def cleaned(mask: np.ndarray) -> np.ndarray:
    """`mask` opened (specks and threads gone), its holes filled, its largest region kept."""
    return largest_region(filled(opened(mask)))


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
    mask = difference > max(otsu(difference), STANDOUT_NOISE_FACTOR * noise + STANDOUT_FLOOR)
    mask = ndimage.binary_closing(opened(mask), iterations=3)
    return largest_region(filled(mask))


def central_rectangle(height: int, width: int, margin: float = START_MARGIN) -> np.ndarray:
    """The picture less `margin` of its height and width at each side, as a mask."""
    mask = np.zeros((height, width), bool)
    top, left = round(margin * height), round(margin * width)
    mask[top:height - top, left:width - left] = True
    return mask


def refine_masks(rgb: np.ndarray, background: np.ndarray, starts: list[np.ndarray],
                 rounds: int = REFINE_ROUNDS) -> list[np.ndarray]:
    """The item's mask redrawn from colour from each of `starts`, as GrabCut does: a mixture of
    Gaussians is fitted to the colours inside the mask and another to those outside (each colour
    as its difference from the background model), every pixel goes to the likelier one
    (smoothed over its neighbours), and the largest region is kept; repeated `rounds` times.
    This follows what a smooth background surface cannot: a patterned bedspread, a floor's
    planks, an item that runs off the edge of the picture. A start stops early, keeping the mask
    it has, when one side is too small to fit or the colours do not separate. The starts are
    independent (each draws its samples from its own generator, seeded alike); their colour
    models are fitted together, round by round."""
    from scipy import ndimage

    smooth = ndimage.gaussian_filter(rgb, sigma=(COLOUR_BLUR, COLOUR_BLUR, 0))
    pixels = (smooth - background).reshape(-1, 3)
    pixel_features = features(pixels)
    masks = list(starts)
    generators = [np.random.default_rng(0) for _ in starts]
    refining = list(range(len(starts)))
    smallest = max(COLOUR_COMPONENTS * MIN_SAMPLES_PER_COMPONENT, MIN_SHARE * pixels.shape[0])
    for _ in range(rounds):
        sides = {index: (np.flatnonzero(masks[index].reshape(-1)), np.flatnonzero(~masks[index].reshape(-1)))
                 for index in refining}
        refining = [index for index in refining if min(map(len, sides[index])) >= smallest]
        if not refining:
            break
        samples = [pixels[generators[index].choice(side, min(COLOUR_SAMPLES, len(side)), replace=False)]
                   for index in refining for side in sides[index]]
        scores = fit_mixtures(samples, COLOUR_COMPONENTS, COLOUR_REGULARISATION).log_densities(pixel_features)
        separated = []
        for position, index in enumerate(refining):
            odds = (scores[2 * position] - scores[2 * position + 1]).reshape(masks[index].shape)
            redrawn = cleaned(ndimage.gaussian_filter(odds, ODDS_BLUR) > 0)
            if MIN_SHARE * redrawn.size < redrawn.sum() < (1 - MIN_SHARE) * redrawn.size:
                masks[index] = redrawn
                separated.append(index)
        refining = separated
    return masks


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
    (`refine_masks`) started from the central rectangle (`margin` in from each side). When what
    they found misses what stands out most (`standout_region`) or differs from the background
    model no more than the rest of the picture (a small item off-centre, where the rectangle holds a
    shadow or only background), they are started from what stands out too (once for all
    margins), and the mask with the larger `excess` is kept. Then what barely differs from the
    background model is dropped (FAINT: soft shadows, creases in a bedspread), and the rest
    opened, holes filled, the largest region kept (unless too little is left)."""
    from scipy import ndimage

    smooth = ndimage.gaussian_filter(rgb, sigma=(DIFFERENCE_BLUR, DIFFERENCE_BLUR, 0))
    difference = np.linalg.norm(smooth - background, axis=2)
    standout = standout_region(difference)
    found = refine_masks(rgb, background, [central_rectangle(*difference.shape, margin) for margin in margins])
    from_standout: list[np.ndarray] = []  # its colour models, fitted when first needed
    masks = []
    for mask in found:
        missed = (mask & standout).sum() < MISSED_SHARE * standout.sum()
        took_background = mask.all() or np.median(difference[mask]) <= np.median(difference[~mask])
        if standout.any() and (missed or took_background):
            from_standout = from_standout or refine_masks(rgb, background, [standout])
            mask = max(mask, from_standout[0], key=lambda candidate: excess(difference, candidate))
        kept = cleaned(mask & (difference > FAINT * np.median(difference[mask])))
        masks.append(kept if kept.sum() > MIN_SHARE * kept.size else mask)
    return masks
