"""fmtool's hand-written SSIM and PSNR agree with scikit-image's reference implementations
(the VAE's model card and every reconstruction report depend on them)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fmtool.metrics.image import psnr, ssim

metrics = pytest.importorskip("skimage.metrics")


def pairs(seed: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, x, y): float images [3, H, W] in [0, 1], from identical to unrelated."""
    rng = np.random.default_rng(seed)
    smooth = np.clip(rng.normal(0.5, 0.2, (3, 48, 40)).cumsum(1).cumsum(2) / 200 % 1, 0, 1)
    noisy = np.clip(smooth + rng.normal(0, 0.05, smooth.shape), 0, 1)
    blurred = (smooth + np.roll(smooth, 1, 1) + np.roll(smooth, 1, 2)) / 3
    return [("identical", smooth, smooth.copy()), ("noise", smooth, noisy),
            ("blur", smooth, blurred), ("unrelated", smooth, rng.random(smooth.shape)),
            ("dark and bright", np.zeros_like(smooth) + 0.1, np.zeros_like(smooth) + 0.9)]


@pytest.mark.parametrize("seed", [0, 1])
def test_ssim_matches_scikit_image(seed: int):
    for name, x, y in pairs(seed):
        reference = metrics.structural_similarity(
            x, y, channel_axis=0, data_range=1.0, gaussian_weights=True, sigma=1.5,
            use_sample_covariance=False)
        ours = float(ssim(torch.from_numpy(x)[None].float(), torch.from_numpy(y)[None].float())[0])
        assert ours == pytest.approx(reference, abs=1e-4), name


@pytest.mark.parametrize("seed", [0, 1])
def test_psnr_matches_scikit_image(seed: int):
    for name, x, y in pairs(seed)[1:]:  # identical images: scikit-image gives inf, fmtool caps
        reference = metrics.peak_signal_noise_ratio(x, y, data_range=1.0)
        ours = float(psnr(torch.from_numpy(x)[None].float(), torch.from_numpy(y)[None].float())[0])
        assert ours == pytest.approx(reference, abs=1e-3), name
