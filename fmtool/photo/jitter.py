"""Photo jitter: what a photo keeps after preprocessing, drawn at random for training images.

It acts on [0, 1] floats before the resize to the model's size, as a batch of tensor ops on the
training device; randomness comes from torch's global generator of the batch's device, as for
the other augmentations (fmtool.data.augment).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def photo_jitter(x: torch.Tensor, probability: float, strength: float = 1.0) -> torch.Tensor:
    """What a photo keeps after preprocessing, drawn at random: float [B,1,H,W] in [0, 1].

    `fmtool classify` turns a photo into a Fashion-MNIST-like item (fmtool.photo.views), but
    what it cannot undo remains: the item a little too small or large and off-centre, some
    background left (a level and a gradient), other contrast and gamma, blur and sensor noise.
    Each image gets all of these with `probability`, with ranges scaled by `strength`:
    scale 1 +- 0.15, shift +- 2 px, background up to 0.12 (half as a ramp), contrast x 0.6..1,
    gamma 0.7..1.4, blur sigma up to 0.7 px, noise sigma up to 0.04.
    """
    if probability <= 0:
        return x
    batch, _, height, width = x.shape
    device = x.device
    apply = (torch.rand(batch, device=device) < probability).view(-1, 1, 1, 1)

    def uniform(low: float, high: float) -> torch.Tensor:
        return torch.empty(batch, device=device).uniform_(low, high).view(-1, 1, 1, 1)

    # scale and shift: one affine warp of the whole batch, zeros (black) where nothing was
    scale = 1.0 + uniform(-0.15, 0.15).view(-1) * strength
    shift = torch.empty(batch, 2, device=device).uniform_(-2.0, 2.0) * strength
    theta = torch.zeros(batch, 2, 3, device=device)
    theta[:, 0, 0] = 1 / scale
    theta[:, 1, 1] = 1 / scale
    theta[:, 0, 2] = shift[:, 0] * 2 / width
    theta[:, 1, 2] = shift[:, 1] * 2 / height
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    # contrast and gamma of the item
    out = (out.clamp(0, 1) * (1 - uniform(0.0, 0.4) * strength)).pow(
        torch.exp(uniform(-0.35, 0.35) * strength))
    # blur: a 3x3 Gaussian of random width, mixed in per image
    sigma = uniform(0.05, 0.7 * strength + 0.05).view(-1)
    taps = torch.arange(-1.0, 2.0, device=device)  # -1, 0, 1
    kernel = torch.exp(-taps.view(1, 3) ** 2 / (2 * sigma.view(-1, 1) ** 2))
    kernel = kernel / kernel.sum(1, keepdim=True)
    blurred = F.conv2d(F.pad(out, (1, 1, 0, 0), mode="replicate").transpose(0, 1),
                       kernel.view(batch, 1, 1, 3), groups=batch)
    blurred = F.conv2d(F.pad(blurred, (0, 0, 1, 1), mode="replicate"),
                       kernel.view(batch, 1, 3, 1), groups=batch).transpose(0, 1)
    # background left over: a level and a linear ramp in a random direction
    angle = uniform(0.0, 2 * math.pi)
    rows = torch.linspace(-0.5, 0.5, height, device=device).view(1, 1, height, 1)
    cols = torch.linspace(-0.5, 0.5, width, device=device).view(1, 1, 1, width)
    ramp = torch.cos(angle) * cols + torch.sin(angle) * rows
    background = (uniform(0.0, 0.06) + uniform(0.0, 0.06) * 2 * ramp).clamp(min=0) * strength
    noisy = blurred + background + torch.randn_like(blurred) * uniform(0.0, 0.04) * strength
    return torch.where(apply, noisy.clamp(0, 1), x)
