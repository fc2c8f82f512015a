"""Reconstruction quality as batched torch ops: MSE, PSNR and SSIM per image.

Images are float tensors [B, C, H, W] in [0, 1]. SSIM follows Wang et al. (2004): an 11x11
Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03, statistics over the window's valid
positions (no padding), computed per channel and averaged over channels and positions. Images
smaller than 11 pixels use a window as large as the image. PSNR is capped at 100 dB (an MSE of
1e-10) so an exact copy gives a finite number that can still be averaged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

WINDOW = 11
SIGMA = 1.5
K1, K2 = 0.01, 0.03
MIN_MSE = 1e-10


def mse(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared error per image, [B]."""
    return (x.float() - y.float()).pow(2).flatten(1).mean(1)


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image, [B]."""
    return 10.0 * torch.log10(data_range ** 2 / mse(x, y).clamp(min=MIN_MSE))


def _gaussian_window(size: int, sigma: float, device: torch.device) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    g = torch.exp(-coords.pow(2) / (2 * sigma * sigma))
    return g / g.sum()


def _blur(x: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filter of every channel, 'valid' positions only."""
    channels = x.shape[1]
    size = window.numel()
    x = F.conv2d(x, window.view(1, 1, 1, size).expand(channels, 1, 1, size), groups=channels)
    return F.conv2d(x, window.view(1, 1, size, 1).expand(channels, 1, size, 1), groups=channels)


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Structural similarity per image, [B] (1 for identical images)."""
    x, y = x.float(), y.float()
    size = min(WINDOW, x.shape[-1], x.shape[-2])
    window = _gaussian_window(size, SIGMA, x.device)
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    mu_x, mu_y = _blur(x, window), _blur(y, window)
    var_x = _blur(x * x, window) - mu_x.pow(2)
    var_y = _blur(y * y, window) - mu_y.pow(2)
    cov = _blur(x * y, window) - mu_x * mu_y
    luminance = (2 * mu_x * mu_y + c1) / (mu_x.pow(2) + mu_y.pow(2) + c1)
    structure = (2 * cov + c2) / (var_x + var_y + c2)
    return (luminance * structure).flatten(1).mean(1)
