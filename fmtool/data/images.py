"""Decoding user images safely and turning them into Fashion-MNIST-like item pictures.

Fashion-MNIST items are light objects on a black background, centred in a 28x28 square.
A photo of a shoe is usually the opposite (dark object on a light background), so `auto`
inverts when the border of the picture is light. The item is padded to a square with its own
background colour before resizing, so it keeps its aspect ratio as in the data set.
"""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from fmtool.choices import Invert

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
            with Image.open(handle) as image:
                if image.width * image.height > MAX_PIXELS:
                    raise ImageReadError(f"too large ({image.width}x{image.height} pixels)")
                image.seek(0)
                image.load()
                image = ImageOps.exif_transpose(image)
                return image.copy()
    except ImageReadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageReadError("declares an enormous size (decompression bomb?)") from exc
    except Image.UnidentifiedImageError as exc:
        raise ImageReadError("not an image Pillow can read") from exc
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, MemoryError) as exc:
        raise ImageReadError(f"damaged or truncated image ({_short(exc)})") from exc


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


def _border(gray: np.ndarray) -> np.ndarray:
    return np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])


def fashion_item(gray: np.ndarray, invert: str = "auto", size: int = 28) -> np.ndarray:
    """uint8 HxW picture -> uint8 size x size, light item on dark, padded to a square."""
    invert = Invert.parse(invert, "invert").value
    border = _border(gray)
    if invert == "always" or (invert == "auto" and float(np.median(border)) > 127):
        gray = 255 - gray
        border = 255 - border
    background = int(np.median(border))
    height, width = gray.shape
    side = max(height, width)
    square = np.full((side, side), background, dtype=np.uint8)
    top, left = (side - height) // 2, (side - width) // 2
    square[top:top + height, left:left + width] = gray
    resized = Image.fromarray(square).resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(resized, dtype=np.uint8)


def load_fashion_item(path: Path, invert: str = "auto") -> np.ndarray:
    """The full path from a file on disk to a 28x28 uint8 item, or ImageReadError."""
    return fashion_item(to_grayscale(open_image(path)), invert=invert)
