"""Face images and grids as picture files: reconstructions, the report's Figures 9 and 10, strips.

A file is written in the format its name says (`fuse --out strip.jpg` writes a JPEG); names in
other formats are refused before any work (`image_format`).
"""

from __future__ import annotations

from pathlib import Path

import torch

from fmtool.engine.io import atomic_write
from fmtool.errors import UserError

# Colour picture formats Pillow writes, by file name ending. zlib level 1 for PNG: about 3x
# faster to write than Pillow's default and still lossless, which matters for a folder of faces.
FORMATS = {".png": ("PNG", {"compress_level": 1}), ".jpg": ("JPEG", {"quality": 95}),
           ".jpeg": ("JPEG", {"quality": 95}), ".webp": ("WEBP", {"quality": 95}),
           ".bmp": ("BMP", {}), ".tif": ("TIFF", {}), ".tiff": ("TIFF", {}), ".gif": ("GIF", {}),
           ".ppm": ("PPM", {})}


def image_format(path: Path) -> str:
    """The format `path`'s name asks for, or a UserError naming the endings that can be written."""
    found = FORMATS.get(path.suffix.lower())
    if found is None:
        ending = path.suffix or "a name without an ending"
        raise UserError(f"{path}: fmtool cannot write a colour picture as {ending}; end the name "
                        f"with one of {', '.join(FORMATS)}")
    return found[0]


def save_png(image: torch.Tensor, path: Path) -> Path:
    """One [3, H, W] image in [0, 1] as an 8-bit picture in the format of its name (PNG for
    .png, see FORMATS), written atomically."""
    from PIL import Image

    image_format(path)
    fmt, options = FORMATS[path.suffix.lower()]
    pixels = image.detach().mul(255).add_(0.5).clamp_(0, 255).to("cpu", torch.uint8)
    picture = Image.fromarray(pixels.permute(1, 2, 0).numpy())
    with atomic_write(path) as sink:
        picture.save(sink, format=fmt, **options)
    return path


def save_grid(images: torch.Tensor, path: Path, columns: int) -> Path:
    """A batch [N, 3, H, W] as a grid with white 2-pixel gaps."""
    from torchvision.utils import make_grid

    return save_png(make_grid(images, nrow=columns, padding=2, pad_value=1.0), path)


def side_by_side(originals: torch.Tensor, reconstructions: torch.Tensor, columns: int = 8) -> torch.Tensor:
    """`reconstruct`'s Figure 9: a grid of originals, a white gap, the same grid reconstructed."""
    return _two_grids(originals, reconstructions, columns, dim=2)


def above_below(originals: torch.Tensor, reconstructions: torch.Tensor, columns: int = 8) -> torch.Tensor:
    """Figure 9 as the report prints it: a grid of originals above the same grid reconstructed."""
    return _two_grids(originals, reconstructions, columns, dim=1)


def _two_grids(first: torch.Tensor, second: torch.Tensor, columns: int, dim: int) -> torch.Tensor:
    """Two grids joined along `dim` (1: one above the other, 2: side by side) by a white gap."""
    from torchvision.utils import make_grid

    a = make_grid(first, nrow=columns, padding=2, pad_value=1.0)
    b = make_grid(second, nrow=columns, padding=2, pad_value=1.0)
    gap_shape = list(a.shape)
    gap_shape[dim] = max(4, first.shape[-1] // 4)
    return torch.cat([a, torch.ones(gap_shape), b], dim=dim)


def alternating(originals: torch.Tensor, reconstructions: torch.Tensor) -> torch.Tensor:
    """The report's Figure 10 order: original, reconstruction, original, ... (pairs in columns)."""
    return torch.stack([originals, reconstructions], dim=1).flatten(0, 1)
