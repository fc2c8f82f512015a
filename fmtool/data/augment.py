"""Batch augmentation as tensor ops on the training device (no per-image Python work).

Random crop with zero padding and horizontal flips act on the uint8 [B,H,W] images (zero is
Fashion-MNIST's black background); random erasing acts on the scaled model input, filling with 0
(the data set's mean once standardised, black once min-max scaled); photo jitter, which acts on
[0, 1] floats, is fmtool.photo.jitter. Randomness comes from torch's global generator of
the batch's device, which the training checkpoint saves, so resumed runs draw the same
augmentations. Every tensor is made on the batch's device (no copy from the host), so a training
step that augments can be captured as a CUDA graph.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F


def random_crop(images: torch.Tensor, padding: int) -> torch.Tensor:
    """Shifts each image by up to `padding` pixels in each direction, filling with zeros."""
    if padding <= 0:
        return images
    batch, height, width = images.shape
    padded = F.pad(images, (padding, padding, padding, padding))
    device = images.device
    dy = torch.randint(0, 2 * padding + 1, (batch, 1, 1), device=device)
    dx = torch.randint(0, 2 * padding + 1, (batch, 1, 1), device=device)
    rows = dy + torch.arange(height, device=device).view(1, height, 1)
    cols = dx + torch.arange(width, device=device).view(1, 1, width)
    index = torch.arange(batch, device=device).view(batch, 1, 1)
    return padded[index, rows, cols]


def random_flip(images: torch.Tensor) -> torch.Tensor:
    """Mirrors a random half of the images left-right."""
    mask = torch.rand(images.shape[0], device=images.device) < 0.5
    return torch.where(mask.view(-1, *([1] * (images.ndim - 1))), images.flip(-1), images)


@functools.lru_cache(maxsize=8)
def _log_range(low: float, high: float) -> tuple[float, float]:
    """The logarithms of a range's ends in float32, as every run so far has drawn them; worked
    out once, so that a training step neither makes nor reads a tensor on the host."""
    low_log, high_log = torch.tensor((low, high)).log().tolist()
    return low_log, high_log


def random_erase(x: torch.Tensor, probability: float, area: tuple[float, float] = (0.02, 0.25),
                 aspect: tuple[float, float] = (0.3, 3.3)) -> torch.Tensor:
    """Zeroes one random rectangle in each image with `probability` (Zhong et al., 2017)."""
    if probability <= 0:
        return x
    batch, _, height, width = x.shape
    device = x.device
    target = torch.empty(batch, device=device).uniform_(*area) * height * width
    log_ratio = torch.empty(batch, device=device).uniform_(*_log_range(*aspect))
    ratio = log_ratio.exp()
    h = (target * ratio).sqrt().round().clamp(1, height).long()
    w = (target / ratio).sqrt().round().clamp(1, width).long()
    top = (torch.rand(batch, device=device) * (height - h + 1)).long()
    left = (torch.rand(batch, device=device) * (width - w + 1)).long()
    rows = torch.arange(height, device=device).view(1, height, 1)
    cols = torch.arange(width, device=device).view(1, 1, width)
    inside = ((rows >= top.view(-1, 1, 1)) & (rows < (top + h).view(-1, 1, 1))
              & (cols >= left.view(-1, 1, 1)) & (cols < (left + w).view(-1, 1, 1)))
    apply = (torch.rand(batch, device=device) < probability).view(-1, 1, 1)
    return x.masked_fill((inside & apply).unsqueeze(1), 0.0)
