"""Decoding user images safely: any file Pillow reads becomes a picture in a common mode, or
one ImageReadError whose message says why in a few words. What is made of the picture
afterwards (a Fashion-MNIST-like item, a face) is the business of fmtool.photo and
fmtool.data.faces."""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

# Pillow warns above ~89 Mpx and refuses above twice that; we refuse at the warning level.
MAX_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485


class ImageReadError(Exception):
    """An image that cannot be used; the message names the reason in a few words."""


def short_reason(exc: BaseException) -> str:
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
        raise ImageReadError(f"cannot be read ({exc.strerror or short_reason(exc)})") from exc
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
                return _common_mode(image.copy())
    except ImageReadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageReadError("declares an enormous size (decompression bomb?)") from exc
    except Image.UnidentifiedImageError as exc:
        raise ImageReadError("not an image Pillow can read") from exc
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
        raise ImageReadError(f"damaged or truncated image ({short_reason(exc)})") from exc
    except MemoryError as exc:
        raise ImageReadError("too large to decode in the memory available") from exc
    except Exception as exc:  # a Pillow plugin's own failure (NotImplementedError, ...)
        raise ImageReadError(f"cannot be decoded ({type(exc).__name__}: {short_reason(exc)})") from exc


# Modes the rest of fmtool converts itself; anything else (CIELAB, HSV, YCbCr, CMYK, ...) is
# turned into RGB while the file's own errors are still this file's errors.
_COMMON_MODES = {"1", "L", "LA", "P", "PA", "RGB", "RGBA", "I;16", "I;16B", "I;16L", "I", "F"}


def _common_mode(image: Image.Image) -> Image.Image:
    return image if image.mode in _COMMON_MODES else image.convert("RGB")


def on_white(image: Image.Image) -> Image.Image:
    """`image` composited onto white when it has transparency (as a viewer shows it on a white
    page), otherwise `image` itself: the one place transparency is decided for every decoder."""
    if image.mode not in ("RGBA", "LA", "PA") and not (image.mode == "P" and "transparency" in image.info):
        return image
    rgba = image.convert("RGBA")
    return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)


def to_grayscale(image: Image.Image) -> np.ndarray:
    """Any mode (16-bit, palette, CMYK, alpha) -> uint8 luminance; transparency becomes white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if array.max() > 255 else 255.0
        return np.clip(array / peak * 255.0, 0, 255).astype(np.uint8)
    if image.mode == "F":
        array = np.asarray(image, dtype=np.float64)
        return np.clip(array * (255.0 if array.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    return np.asarray(on_white(image).convert("L"), dtype=np.uint8)


def to_rgb_array(image: Image.Image) -> np.ndarray:
    """Any mode -> float32 [H, W, 3] in [0, 1]; transparency becomes white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        gray = to_grayscale(image).astype(np.float32) / 255.0
        return np.repeat(gray[:, :, None], 3, axis=2)
    return np.asarray(on_white(image).convert("RGB"), dtype=np.float32) / 255.0
