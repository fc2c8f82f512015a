"""Decoding user images safely: any file Pillow reads becomes a picture in a common mode, or
one ImageReadError whose message says why in a few words. What is made of the picture
afterwards (a Fashion-MNIST-like item, a face) is the business of fmtool.photo and
fmtool.data.faces."""

from __future__ import annotations

import ctypes
import io
import struct
import warnings
from pathlib import Path
from typing import BinaryIO, Callable, TypeVar

import numpy as np
from PIL import Image, ImageOps

from fmtool.errors import UserError

# Pillow warns above ~89 Mpx and refuses above twice that; we refuse at the warning level.
MAX_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485


class ImageReadError(Exception):
    """An image that cannot be used; the message names the reason in a few words."""


def short_reason(exc: BaseException) -> str:
    """An exception as a few words on one line (messages name the file; this says why)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def quiet_libtiff() -> None:
    """Turns off the error and warning printers of the libtiff inside Pillow, once per process.

    libtiff writes its own lines straight to the process's stderr ("tempfile.tif: Using code
    not yet in table.") besides the error Pillow raises, which fmtool already reports as that
    file's one line. Its handlers are reached through the library Pillow loaded, as the
    process's memory map names it (Linux); elsewhere the lines stay."""
    global _libtiff_quiet
    if _libtiff_quiet:
        return
    _libtiff_quiet = True
    try:
        with open("/proc/self/maps") as maps:
            libraries = {line.split()[-1] for line in maps
                         if line.rstrip().rsplit("/", 1)[-1].startswith("libtiff")}
    except OSError:
        return
    for library in libraries:
        try:
            handle = ctypes.CDLL(library)
            handle.TIFFSetErrorHandler.restype = handle.TIFFSetWarningHandler.restype = ctypes.c_void_p
            handle.TIFFSetErrorHandler(None)
            handle.TIFFSetWarningHandler(None)
        except (OSError, AttributeError):
            continue


_libtiff_quiet = False


def open_image(path: Path) -> Image.Image:
    """Fully decodes `path` (first frame, EXIF orientation applied) or raises ImageReadError.

    Hostile files fail fast with a one-line reason: a size beyond MAX_PIXELS is refused from the
    header before any pixel is decoded, and only regular files are opened (a FIFO would block).
    Pillow's warnings (corrupt EXIF, odd palettes) are silenced so stderr keeps one line a file.
    """
    quiet_libtiff()
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
        raise ImageReadError(f"damaged or truncated image ({short_reason(exc)})") from exc
    except MemoryError as exc:
        raise ImageReadError("too large to decode in the memory available") from exc
    except Exception as exc:  # a Pillow plugin's own failure (NotImplementedError, ...)
        raise ImageReadError(f"cannot be decoded ({type(exc).__name__}: {short_reason(exc)})") from exc


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


Prepared = TypeVar("Prepared")


def read_image(path: Path, prepare: Callable[[Image.Image], Prepared]) -> Prepared:
    """The one guarded way from a file to what a command uses: `open_image`, then `prepare`,
    with whatever goes wrong in either (a size refused from the header, memory running out, a
    plugin's own error) as this file's ImageReadError, never the batch's failure. Every command
    that reads user images (classify, reconstruct, fuse, training's faces) goes through it."""
    return prepared(open_image(path), prepare)


def prepared(image: Image.Image, prepare: Callable[[Image.Image], Prepared]) -> Prepared:
    """`prepare(image)` for a decoded picture (a file's, or one given in memory), with whatever
    goes wrong as its ImageReadError (see `read_image`)."""
    try:
        # An odd picture (flat, one pixel wide) can divide by zero while it is prepared; a result
        # that is unusable fails on its own, and numpy's warnings would be noise on stderr.
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return prepare(image)
    except MemoryError as exc:
        raise ImageReadError("too large to prepare in the memory available") from exc
    except (ValueError, TypeError, OSError, NotImplementedError, np.linalg.LinAlgError) as exc:
        if isinstance(exc, UserError):  # a wrong choice (invert=...) is the caller's
            raise
        raise ImageReadError(f"cannot be prepared ({type(exc).__name__}: {short_reason(exc)})") from exc
