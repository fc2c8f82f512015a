"""Decoding user images safely and turning them into Fashion-MNIST-like item pictures.

Fashion-MNIST items are light objects on a black background, centred in a 28x28 square.
A photo of a shoe is usually the opposite (dark object on a light background), so `auto`
inverts when the item is darker than the background around it. The item keeps its aspect
ratio, as in the data set: its longest side fills the square.
"""

from __future__ import annotations

import io
import struct
import warnings
from pathlib import Path
from typing import BinaryIO, Callable, TypeVar

import numpy as np
from PIL import Image, ImageOps
from threadpoolctl import threadpool_limits

from fmtool.choices import Invert, UnknownChoice

# Pillow warns above ~89 Mpx and refuses above twice that; we refuse at the warning level.
MAX_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485


class ImageReadError(Exception):
    """An image that cannot be used; the message names the reason in a few words."""


def _short(exc: BaseException) -> str:
    """An exception as a few words on one line (messages name the file; this says why)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def open_image(path: Path) -> Image.Image:
    """Fully decodes `path` (first frame, EXIF orientation applied) or raises ImageReadError.

    Hostile files fail fast with a one-line reason: a size beyond MAX_PIXELS is refused from the
    header before any pixel is decoded, and only regular files are opened (a FIFO would block).
    Pillow's warnings (corrupt EXIF, odd palettes) are silenced so stderr keeps one line a file.
    """
    if path.is_dir():
        raise ImageReadError("is a directory, not an image file")
    if not path.exists():
        raise ImageReadError("no such file")
    if not path.is_file():
        raise ImageReadError("not a regular file")
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise ImageReadError(f"cannot be read ({exc.strerror or _short(exc)})") from exc
    try:
        with handle, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            if not handle.read(1):
                raise ImageReadError("not an image: the file is empty (0 bytes)")
            handle.seek(0)
            try:
                return _decode(handle)
            except ValueError as exc:
                if "MAX_TEXT" not in str(exc):
                    raise
                # Pillow refuses large PNG text chunks (a guard against text bombs), but the
                # picture is fine: decode it without its text, which fmtool never reads.
                handle.seek(0)
                return _decode(io.BytesIO(_without_png_text(handle.read())))
    except ImageReadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageReadError("declares an enormous size (decompression bomb?)") from exc
    except Image.UnidentifiedImageError as exc:
        raise ImageReadError("not an image Pillow can read") from exc
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
        raise ImageReadError(f"damaged or truncated image ({_short(exc)})") from exc
    except MemoryError as exc:
        raise ImageReadError("too large to decode in the memory available") from exc
    except Exception as exc:  # a Pillow plugin's own failure (NotImplementedError, ...)
        raise ImageReadError(f"cannot be decoded ({type(exc).__name__}: {_short(exc)})") from exc


def _decode(handle: BinaryIO) -> Image.Image:
    with Image.open(handle) as image:
        if image.width * image.height > MAX_PIXELS:
            raise ImageReadError(f"too large ({image.width}x{image.height} pixels)")
        image.seek(0)
        image.load()
        # In place: a copy would double the memory of a picture that is large by design.
        ImageOps.exif_transpose(image, in_place=True)
        return _common_mode(image)


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_TEXT = {b"tEXt", b"zTXt", b"iTXt"}


def _without_png_text(data: bytes) -> bytes:
    """A PNG's bytes without its text chunks (each chunk: length, type, data, CRC)."""
    if not data.startswith(_PNG_SIGNATURE):
        return data
    kept, position = [_PNG_SIGNATURE], len(_PNG_SIGNATURE)
    while position + 8 <= len(data):
        (length,) = struct.unpack(">I", data[position:position + 4])
        end = position + 12 + length
        if data[position + 4:position + 8] not in _PNG_TEXT:
            kept.append(data[position:end])
        position = end
    return b"".join(kept)


# Modes the rest of fmtool converts itself; anything else (CIELAB, HSV, YCbCr, CMYK, ...) is
# turned into RGB while the file's own errors are still this file's errors.
_COMMON_MODES = {"1", "L", "LA", "P", "PA", "RGB", "RGBA", "I;16", "I;16B", "I;16L", "I", "F"}


def _common_mode(image: Image.Image) -> Image.Image:
    return image if image.mode in _COMMON_MODES else image.convert("RGB")


def to_grayscale(image: Image.Image) -> np.ndarray:
    """Any mode (16-bit, palette, CMYK, alpha) -> uint8 luminance; transparency becomes white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if array.max() > 255 else 255.0
        return np.clip(array / peak * 255.0, 0, 255).astype(np.uint8)
    if image.mode == "F":
        array = np.asarray(image, dtype=np.float64)
        return np.clip(array * (255.0 if array.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info)
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return np.asarray(image.convert("L"), dtype=np.uint8)


WORKING_SIDE = 192  # photos are analysed at most this large: enough for a mask, bounded work
ITEM_SIDE = 28  # Fashion-MNIST's items fill 28 pixels along their longest side
DARK_BACKGROUND = 24  # a border this dark (median, 0..255) is already Fashion-MNIST's black
# Fashion-MNIST items are solid shapes: a white shirt negated from a white studio background is
# still a grey silhouette. A photo's item keeps this much brightness where its colour is close
# to the background's, so its shape survives; its contrast adds the detail above that.
SILHOUETTE = 0.3


def to_rgb_array(image: Image.Image) -> np.ndarray:
    """Any mode -> float32 [H, W, 3] in [0, 1]; transparency becomes white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        gray = to_grayscale(image).astype(np.float32) / 255.0
        return np.repeat(gray[:, :, None], 3, axis=2)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0


def _border_mask(height: int, width: int) -> np.ndarray:
    band = max(1, round(0.04 * min(height, width)))
    mask = np.zeros((height, width), bool)
    mask[:band], mask[-band:], mask[:, :band], mask[:, -band:] = True, True, True, True
    return mask


def _luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.299, 0.587, 0.114], np.float32)


def background_model(rgb: np.ndarray) -> np.ndarray:
    """The colour the background would have under the item: a smooth surface (quadratic in x
    and y, per channel) fitted to the picture's border, so light falling across a wall, a shadow
    at one side or a floor's gradient are modelled rather than mistaken for the item. Border
    pixels the fit explains badly (a sleeve reaching the edge) are dropped and the fit redone."""
    height, width, _ = rgb.shape
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    y, x = rows / max(height - 1, 1) - 0.5, cols / max(width - 1, 1) - 0.5
    terms = np.stack([np.ones_like(x), x, y, x * x, y * y, x * y], axis=-1)
    border = _border_mask(height, width)
    design, target = terms[border], rgb[border]
    keep = np.ones(len(target), bool)
    for _ in range(3):
        coefficients, *_ = np.linalg.lstsq(design[keep], target[keep], rcond=None)
        residual = np.linalg.norm(design @ coefficients - target, axis=1)
        spread = np.median(residual[keep]) * 1.4826 + 1e-3
        keep = residual < 2.5 * spread + 0.02
        if keep.sum() < 12:  # too little border left to trust: use all of it
            keep[:] = True
    return (terms @ coefficients).astype(np.float32)


def _largest_region(mask: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    labels, count = ndimage.label(mask)
    if count == 0:
        return mask
    sizes = ndimage.sum(mask, labels, index=np.arange(1, count + 1))
    return labels == int(np.argmax(sizes)) + 1


# GrabCut's start: the item is somewhere inside the picture's central rectangle. Starting
# instead from what stands out most from the background (`_standout`) led the colour models to
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


def _otsu(values: np.ndarray) -> float:
    """The threshold that best splits `values` (in [0, 1]) into two classes."""
    histogram, edges = np.histogram(values, bins=128, range=(0.0, max(float(values.max()), 1e-6)))
    weights = histogram.astype(np.float64) / max(histogram.sum(), 1)
    centres = (edges[:-1] + edges[1:]) / 2
    below = np.cumsum(weights)
    mean_below = np.cumsum(weights * centres)
    total = mean_below[-1]
    between = (total * below - mean_below) ** 2 / np.maximum(below * (1 - below), 1e-12)
    return float(centres[int(np.argmax(between))])


def _standout(difference: np.ndarray) -> np.ndarray:
    """What stands out most from the background: a difference above Otsu's threshold and above
    the border's own variation, cleaned, holes filled, the largest region kept; empty when
    nothing does. Often only the item's boldest part, but wherever the item is."""
    from scipy import ndimage

    noise = float(np.percentile(difference[_border_mask(*difference.shape)], 75))
    mask = difference > max(_otsu(difference), 2.0 * noise + 0.03)
    mask = ndimage.binary_closing(ndimage.binary_opening(mask, iterations=1), iterations=3)
    return _largest_region(ndimage.binary_fill_holes(mask))


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
        redrawn = _largest_region(ndimage.binary_fill_holes(redrawn))
        if not 0.002 * mask.size < redrawn.sum() < 0.998 * mask.size:
            break  # the colours did not separate: keep the mask that was
        mask = redrawn
    return mask


def _excess(difference: np.ndarray, mask: np.ndarray) -> float:
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
    they found misses what stands out most (`_standout`) or differs from the background model no
    more than the rest of the picture (a small item off-centre, where the rectangle holds a
    shadow or only background), they are started from what stands out too (once for all
    margins), and the mask with the larger `_excess` is kept. Then what barely differs from the
    background model is dropped (FAINT: soft shadows, creases in a bedspread), and the rest
    opened, holes filled, the largest region kept (unless too little is left)."""
    from scipy import ndimage

    smooth = ndimage.gaussian_filter(rgb, sigma=(1.5, 1.5, 0))
    difference = np.linalg.norm(smooth - background, axis=2)
    standout = _standout(difference)
    from_standout: list[np.ndarray] = []  # its colour models, fitted when first needed
    masks = []
    for margin in margins:
        mask = refine_mask(rgb, background, central_rectangle(*difference.shape, margin))
        missed = (mask & standout).sum() < 0.5 * standout.sum()  # what stands out most
        took_background = mask.all() or np.median(difference[mask]) <= np.median(difference[~mask])
        if standout.any() and (missed or took_background):
            from_standout = from_standout or [refine_mask(rgb, background, standout)]
            mask = max(mask, from_standout[0], key=lambda found: _excess(difference, found))
        kept = mask & (difference > FAINT * np.median(difference[mask]))
        kept = _largest_region(ndimage.binary_fill_holes(ndimage.binary_opening(kept)))
        masks.append(kept if kept.sum() > 0.002 * kept.size else mask)
    return masks


def _polarity(luminance: np.ndarray, background: np.ndarray, mask: np.ndarray,
              invert: str) -> bool:
    """True when the item must be negated: `always`; or `auto` and the item is darker than
    the background around it (a dark coat on a light wall); never with `never`."""
    if invert != "auto":
        return invert == "always"
    return float(np.median(luminance[mask] - background[mask])) < 0


def _square_and_resize(gray: np.ndarray, size: int) -> np.ndarray:
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


def _working_copy(image: Image.Image) -> Image.Image:
    """The picture at most WORKING_SIDE pixels on its longest side (box filter: every source
    pixel counts once, so the work is bounded by the pixels actually present)."""
    longest = max(image.size)
    if longest <= WORKING_SIDE:
        return image
    scale = WORKING_SIDE / longest
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BOX)


# A photo's preparation rests on two guesses: where GrabCut starts (the central rectangle's
# margin) and how far the item's box reaches (a shadow or a missed sleeve moves it). `classify`
# makes each guess three ways and averages the model's logits over the nine pictures, as flip
# TTA averages over mirrors. On the 200 shared photos, four models trained at the bundled width
# (with and without photo jitter) got 1-8 more right than with the first view (a 10% margin,
# the longest side at 28 pixels) alone.
VIEW_MARGINS = (START_MARGIN, 0.05, 0.15)
VIEW_SCALES = (1.0, 26 / 28, 24 / 28)  # of the longest side; Fashion-MNIST's items fill it


def fashion_item(image: Image.Image | np.ndarray, invert: str = "auto",
                 size: int = ITEM_SIDE) -> np.ndarray:
    """A picture of one item -> what Fashion-MNIST's pipeline would have made of it: uint8
    size x size, the item light on black, its longest side filling the frame, centred.

    Fashion-MNIST trimmed each product photo to the item, resized its longest side to 28,
    centred it and negated it. A photo taken at home has a background (a bed, a floor, a wall,
    often lit unevenly) instead of white, so this first models that background from the border
    (`background_model`), finds the item by the colours inside and outside the picture's
    central rectangle, as GrabCut does (`item_masks`), and takes its difference from the
    background as its detail: negated when the item is darker than its background (`invert`
    auto), so that it ends up light on black either way, stretched so the item's brightest one
    percent reaches white, over a grey silhouette (SILHOUETTE). A picture whose border is
    already black and whose item is lighter (Fashion-MNIST's own images) is only squared and
    resized.
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
    rgb = to_rgb_array(_working_copy(image))
    luminance = _luminance(rgb)
    border = _border_mask(*luminance.shape)
    if float(np.median(luminance[border])) * 255 <= DARK_BACKGROUND and invert != "always":
        return _square_and_resize(to_grayscale(_working_copy(image)), size)[None]
    # The fits are on a few thousand 3-vectors: a second thread, BLAS's or the k-means start's
    # OpenMP one, costs more than it gives (on two cores, 81 s against 48 s for the 200 shared
    # photos with one view each when BLAS was limited; 33 s against 27 s for 40 photos with nine
    # views each when OpenMP was too). Only libraries already loaded are limited, so scikit-learn
    # and SciPy are loaded first.
    import scipy.ndimage  # noqa: F401
    import sklearn.mixture  # noqa: F401

    with threadpool_limits(limits=1):
        background = background_model(rgb)
        masks = item_masks(rgb, background, margins)
    background_luminance = _luminance(background)
    views = []
    for mask in masks:
        item = _item_picture(luminance, background_luminance, mask, invert)
        views += [_centred(item, round(size * scale), size) for scale in scales]
    return np.stack(views)


def _item_picture(luminance: np.ndarray, background: np.ndarray, mask: np.ndarray,
                  invert: str) -> np.ndarray:
    """The item's difference from the background, light on black in [0, 1], over its grey
    silhouette, trimmed to the mask's box (see `fashion_item`)."""
    from scipy import ndimage

    negate = _polarity(luminance, background, mask, invert)
    contrast = background - luminance if negate else luminance - background
    soft = ndimage.gaussian_filter(mask.astype(np.float32), sigma=0.7)
    detail = np.clip(contrast, 0, None)
    peak = float(np.percentile(detail[mask], 99))
    detail = np.clip(detail / max(peak, 1e-3), 0, 1)
    item = (SILHOUETTE + (1 - SILHOUETTE) * detail) * soft
    rows, cols = np.nonzero(mask)
    return item[rows.min():rows.max() + 1, cols.min():cols.max() + 1]


def _centred(item: np.ndarray, side: int, size: int) -> np.ndarray:
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


def load_fashion_views(path: Path, invert: str = "auto", single: bool = False) -> np.ndarray:
    """The full path from a file on disk to its 28x28 uint8 views (`fashion_views`; with
    `single` only the first), or ImageReadError (see `read_image`)."""
    return read_image(path, lambda image: fashion_item(image, invert=invert)[None] if single
                      else fashion_views(image, invert))


Prepared = TypeVar("Prepared")


def read_image(path: Path, prepare: Callable[[Image.Image], Prepared]) -> Prepared:
    """The one guarded way from a file to what a command uses: `open_image`, then `prepare`,
    with whatever goes wrong in either (a size refused from the header, memory running out, a
    plugin's own error) as this file's ImageReadError, never the batch's failure. Every command
    that reads user images (classify, reconstruct, fuse, training's faces) goes through it."""
    image = open_image(path)
    try:
        # An odd picture (flat, one pixel wide) can divide by zero while it is prepared; a result
        # that is unusable fails on its own, and numpy's warnings would be noise on stderr.
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return prepare(image)
    except MemoryError as exc:
        raise ImageReadError("too large to prepare in the memory available") from exc
    except (ValueError, TypeError, OSError, NotImplementedError, np.linalg.LinAlgError) as exc:
        if isinstance(exc, UnknownChoice):
            raise
        raise ImageReadError(f"cannot be prepared ({type(exc).__name__}: {_short(exc)})") from exc
