"""The report's VAE (shapes, layers, loss) and the PSNR/SSIM used to judge its reconstructions."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Normal, kl_divergence

from fmtool.metrics.image import mse, psnr, ssim
from fmtool.models.vae import FaceVAE, reparameterize, vae_loss_terms


def test_report_architecture_at_224():
    model = FaceVAE()  # 224 px, latent 256: the report's model
    convs = [m for m in model.encoder.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 64, 128, 256, 512]
    assert all(c.kernel_size == (3, 3) and c.stride == (2, 2) for c in convs)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.encoder.modules()) == 5
    assert sum(isinstance(m, nn.LeakyReLU) for m in model.encoder.modules()) == 5
    ups = [m for m in model.decoder.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [u.out_channels for u in ups] == [256, 128, 64, 32, 32]
    assert model.output.out_channels == 3
    assert model.fc_mu.in_features == model.fc_logvar.in_features == 512 * 7 * 7
    assert model.fc_mu.out_features == 256 and model.decoder_input.out_features == 512 * 7 * 7

    model.eval()
    with torch.no_grad():
        x = torch.rand(2, 3, 224, 224)
        assert model.encoder(x).shape == (2, 512, 7, 7)
        mu, logvar = model.encode(x)
        out = model.decode(mu)
    assert mu.shape == logvar.shape == (2, 256)
    assert out.shape == (2, 3, 224, 224) and 0 <= out.min() and out.max() <= 1  # Sigmoid


@pytest.mark.parametrize("size", [32, 64, 128])
def test_smaller_sizes_keep_the_architecture_and_linear_layers_follow(size):
    model = FaceVAE(image_size=size, latent_dim=16)
    side = size // 32
    assert model.fc_mu.in_features == 512 * side * side
    logits, mu, logvar = model(torch.rand(3, 3, size, size))
    assert logits.shape == (3, 3, size, size) and mu.shape == logvar.shape == (3, 16)


def test_the_upsampling_decoder_has_the_reports_weights_but_no_transposed_convolution():
    report, variant = FaceVAE(64, 16), FaceVAE(64, 16, decoder="upsample")
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in variant.decoder.modules())
    doublings = [m for m in variant.decoder.modules() if isinstance(m, nn.Upsample)]
    assert len(doublings) == 5 and all(m.scale_factor == 2 for m in doublings)
    refine = 32 * 32 * 9 + 32 + 2 * 32  # one more 3x3 convolution and its BatchNorm at full size
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(variant) == count(report) + refine
    logits, mu, _ = variant(torch.rand(2, 3, 64, 64))
    assert logits.shape == (2, 3, 64, 64) and mu.shape == (2, 16)
    with pytest.raises(ValueError, match="decoder must be one of"):
        FaceVAE(64, 16, decoder="pixelshuffle")


@pytest.mark.parametrize("size", [0, 48, 100])
def test_size_must_be_a_multiple_of_32(size):
    with pytest.raises(ValueError, match="multiple of 32"):
        FaceVAE(image_size=size)


def test_loss_is_summed_bce_plus_the_gaussian_kl():
    torch.manual_seed(0)
    logits, x = torch.randn(4, 3, 8, 8), torch.rand(4, 3, 8, 8)
    mu, logvar = torch.randn(4, 5), torch.randn(4, 5)
    bce, kl = vae_loss_terms(logits, x, mu, logvar)
    for i in range(4):
        expected_bce = F.binary_cross_entropy(torch.sigmoid(logits[i]), x[i], reduction="sum")
        expected_kl = kl_divergence(Normal(mu[i], (0.5 * logvar[i]).exp()), Normal(0.0, 1.0)).sum()
        assert torch.allclose(bce[i], expected_bce, rtol=1e-4)
        assert torch.allclose(kl[i], expected_kl, rtol=1e-4)
    _, kl_prior = vae_loss_terms(logits, x, torch.zeros(4, 5), torch.zeros(4, 5))
    assert torch.equal(kl_prior, torch.zeros(4))  # q = prior: no KL


def test_reparameterisation_samples_the_posterior():
    mu, logvar = torch.tensor([[1.0, -2.0]]), torch.tensor([[0.0, 2 * torch.log(torch.tensor(3.0))]])
    eps = torch.tensor([[0.5, -1.0]])
    assert torch.allclose(reparameterize(mu, logvar, eps), torch.tensor([[1.5, -5.0]]))
    torch.manual_seed(0)
    z = reparameterize(mu.expand(20000, 2), logvar.expand(20000, 2))
    assert torch.allclose(z.mean(0), mu[0], atol=0.1) and torch.allclose(z.std(0), torch.tensor([1.0, 3.0]), atol=0.1)


def test_loss_decreases_over_a_few_steps():
    torch.manual_seed(0)
    model = FaceVAE(image_size=32, latent_dim=16)
    x = torch.rand(1, 3, 32, 32).repeat(16, 1, 1, 1) * torch.linspace(0.3, 1.0, 16).view(-1, 1, 1, 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(12):
        logits, mu, logvar = model(x)
        bce, kl = vae_loss_terms(logits, x, mu, logvar)
        loss = (bce + kl).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.97 * losses[0]


# -- PSNR and SSIM ----------------------------------------------------------------------------
def test_psnr_and_mse_known_values():
    x = torch.full((2, 3, 16, 16), 0.4)
    assert torch.allclose(mse(x, x + 0.1), torch.full((2,), 0.01))
    assert torch.allclose(psnr(x, x + 0.1), torch.full((2,), 20.0), atol=1e-4)
    assert torch.allclose(psnr(x, x), torch.full((2,), 100.0))  # capped, still averageable


def test_ssim_of_identical_images_is_one_and_falls_with_noise():
    torch.manual_seed(0)
    x = torch.rand(3, 3, 32, 32)
    assert torch.allclose(ssim(x, x), torch.ones(3), atol=1e-5)
    mild = (x + 0.05 * torch.randn_like(x)).clamp(0, 1)
    strong = (x + 0.3 * torch.randn_like(x)).clamp(0, 1)
    assert (ssim(x, strong) < ssim(x, mild)).all() and (ssim(x, mild) < 1).all()
    assert torch.allclose(ssim(x, mild), ssim(mild, x), atol=1e-6)  # symmetric


def test_ssim_of_flat_images_is_the_luminance_term():
    a, b = 0.2, 0.6  # no variance: SSIM = (2ab + C1) / (a^2 + b^2 + C1)
    c1 = 0.01 ** 2
    expected = (2 * a * b + c1) / (a * a + b * b + c1)
    got = ssim(torch.full((1, 3, 20, 20), a), torch.full((1, 3, 20, 20), b))
    assert torch.allclose(got, torch.tensor([expected]), atol=1e-5)


def test_ssim_works_below_the_window_size():
    x = torch.rand(2, 3, 8, 8)
    assert ssim(x, x).shape == (2,) and torch.allclose(ssim(x, x), torch.ones(2), atol=1e-5)
