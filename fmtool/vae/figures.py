"""Face images and grids as PNG files: reconstructions, the report's Figures 9 and 10, strips."""

from __future__ import annotations

from pathlib import Path

import torch

from fmtool.engine.io import atomic_write


def save_png(image: torch.Tensor, path: Path) -> Path:
    """One [3, H, W] image in [0, 1] as an 8-bit PNG, written atomically. zlib level 1: about 3x
    faster to write than Pillow's default and still lossless, which matters for a folder of faces."""
    from PIL import Image

    pixels = image.detach().mul(255).add_(0.5).clamp_(0, 255).to("cpu", torch.uint8)
    picture = Image.fromarray(pixels.permute(1, 2, 0).numpy())
    with atomic_write(path) as sink:
        picture.save(sink, format="PNG", compress_level=1)
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
