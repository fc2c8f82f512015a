"""The report's convolutional VAE for faces (section 2) and its loss (equations (2)-(4)).

Encoder: five 3x3 stride-2 convolutions (32, 64, 128, 256, 512 channels), each followed by
BatchNorm and LeakyReLU, take a 224x224 face to 512x7x7; two linear heads give the mean and the
log-variance of a 256-dim latent code. Decoder: a linear layer back to 512x7x7, transposed
convolutions that mirror the encoder back up to 224x224, and a last 3x3 convolution to RGB with a
Sigmoid.

Choices where the report leaves room (tested in tests/models/test_vae.py):
- "Mirroring the encoder" is five 3x3 stride-2 transposed convolutions (512->256->128->64->32->32),
  each with BatchNorm and LeakyReLU, so the decoder doubles the size as often as the encoder
  halved it; the final 3x3 convolution (32->3, padding 1) keeps the size.
- `decoder="upsample"` is a variant beside the report's: each doubling is a nearest-neighbour
  upsample followed by a 3x3 convolution (the same weights as the transposed convolution it
  replaces), and one more 3x3 convolution at full size before the output. A stride-2 transposed
  3x3 convolution adds up a different number of taps at even and odd output pixels, which shows
  as a checkerboard on faces; upsampling first gives every pixel the same taps. It costs
  about a quarter more time per epoch on a CPU, and in short 64 px runs it was behind the
  report's decoder at every epoch (docs/recipes.md), so `cpu` keeps the report's.
- Any image size that is a multiple of 32 works: the feature map is 512 x size/32 x size/32 and
  the linear layers follow it (224 -> 7x7, 64 -> 2x2, 32 -> 1x1).
- The decoder computes logits and the Sigmoid is applied by `decode`; the loss takes the logits
  (binary_cross_entropy_with_logits), which is the same BCE as on the Sigmoid's output but does
  not overflow when a pixel saturates.
- Equations (2)-(4) sum the BCE over pixels and channels and the KL term over latent dimensions;
  we do the same per image and average over the batch, so the number does not depend on the
  batch size (Adam's steps are invariant to that constant factor).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

CHANNELS = (32, 64, 128, 256, 512)
NEGATIVE_SLOPE = 0.01
DOWNSCALE = 2 ** len(CHANNELS)  # five stride-2 convolutions
DECODERS = ("transposed", "upsample")


def _down(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.LeakyReLU(NEGATIVE_SLOPE),
    )


def _up(in_channels: int, out_channels: int, decoder: str) -> nn.Sequential:
    if decoder == "transposed":
        double = [nn.ConvTranspose2d(in_channels, out_channels, 3, stride=2, padding=1,
                                     output_padding=1)]
    else:
        double = [nn.Upsample(scale_factor=2, mode="nearest"),
                  nn.Conv2d(in_channels, out_channels, 3, padding=1)]
    return nn.Sequential(*double, nn.BatchNorm2d(out_channels), nn.LeakyReLU(NEGATIVE_SLOPE))


def _refine(channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels),
                         nn.LeakyReLU(NEGATIVE_SLOPE))


class FaceVAE(nn.Module):
    """Convolutional VAE: `forward` returns (reconstruction logits, mu, logvar)."""

    def __init__(self, image_size: int = 224, latent_dim: int = 256, in_channels: int = 3,
                 decoder: str = "transposed"):
        super().__init__()
        if decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {', '.join(DECODERS)}, got {decoder!r}")
        if image_size < DOWNSCALE or image_size % DOWNSCALE:
            raise ValueError(f"image_size must be a positive multiple of {DOWNSCALE}, got {image_size}")
        if latent_dim < 1:
            raise ValueError(f"latent_dim must be positive, got {latent_dim}")
        self.image_size = image_size
        self.latent_dim = latent_dim
        self.side = image_size // DOWNSCALE
        widths = (in_channels,) + CHANNELS
        self.encoder = nn.Sequential(*(_down(a, b) for a, b in zip(widths, widths[1:])))
        features = CHANNELS[-1] * self.side * self.side
        self.fc_mu = nn.Linear(features, latent_dim)
        self.fc_logvar = nn.Linear(features, latent_dim)
        self.decoder_input = nn.Linear(latent_dim, features)
        back = CHANNELS[::-1] + (CHANNELS[0],)  # 512, 256, 128, 64, 32, 32
        layers = [_up(a, b, decoder) for a, b in zip(back, back[1:])]
        if decoder == "upsample":
            layers.append(_refine(CHANNELS[0]))
        self.decoder = nn.Sequential(*layers)
        self.output = nn.Conv2d(CHANNELS[0], in_channels, 3, padding=1)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images in [0, 1], [B, 3, S, S] -> (mu, logvar), each [B, latent_dim]."""
        h = torch.flatten(self.encoder(x), 1)
        return self.fc_mu(h), self.fc_logvar(h)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        h = self.decoder_input(z).view(-1, CHANNELS[-1], self.side, self.side)
        return self.output(self.decoder(h))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latent codes [B, latent_dim] -> images in [0, 1] (the Sigmoid of the logits)."""
        return torch.sigmoid(self.decode_logits(z))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        return self.decode_logits(reparameterize(mu, logvar)), mu, logvar


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor,
                   eps: torch.Tensor | None = None) -> torch.Tensor:
    """z = mu + sigma * eps with sigma = exp(logvar / 2) (eps ~ N(0, I) unless given)."""
    if eps is None:
        eps = torch.randn_like(mu)
    return mu + torch.exp(0.5 * logvar) * eps


def vae_loss_terms(logits: torch.Tensor, target: torch.Tensor, mu: torch.Tensor,
                   logvar: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image BCE (summed over pixels and channels) and KL(q(z|x) || N(0, I)), each [B]."""
    bce = F.binary_cross_entropy_with_logits(logits.float(), target.float(), reduction="none")
    bce = bce.flatten(1).sum(1)
    mu, logvar = mu.float(), logvar.float()
    kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)
    return bce, kl
