"""A trained VAE in use: built from a checkpoint's metadata; batched encoding and decoding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from fmtool.data.faces import to_unit
from fmtool.engine.batching import map_batches
from fmtool.engine.checkpoint import load_model
from fmtool.models.vae import FaceVAE, reparameterize

EVAL_BATCH = 128


def build_model(meta: dict[str, Any]) -> FaceVAE:
    arch = meta["architecture"]
    return FaceVAE(image_size=arch["image_size"], latent_dim=arch["latent_dim"])


def load_vae(path: Path, device: torch.device) -> tuple[FaceVAE, dict[str, Any]]:
    """A VAE checkpoint as a ready model in eval mode, with its metadata."""
    return load_model(path, "vae", build_model, device)  # type: ignore[return-value]


def encode(model: FaceVAE, images: torch.Tensor, device: torch.device,
           batch_size: int = EVAL_BATCH) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 [N, 3, S, S] -> (mu, logvar) as CPU float tensors [N, latent_dim]."""
    model.eval()
    codes = map_batches(lambda chunk: torch.cat(model.encode(to_unit(chunk)), dim=1),
                        images, batch_size, device)
    if not codes:
        return torch.empty(0, model.latent_dim), torch.empty(0, model.latent_dim)
    mu, logvar = torch.cat(codes).chunk(2, dim=1)
    return mu.contiguous(), logvar.contiguous()


def decode(model: FaceVAE, z: torch.Tensor, device: torch.device,
           batch_size: int = EVAL_BATCH) -> torch.Tensor:
    """Latent codes [N, latent_dim] -> CPU float images in [0, 1], [N, 3, S, S]."""
    model.eval()
    out = map_batches(model.decode, z, batch_size, device)
    if not out:
        return torch.empty(0, 3, model.image_size, model.image_size)
    return torch.cat(out)


def reconstruct(model: FaceVAE, images: torch.Tensor, device: torch.device, sample: bool = False,
                generator: torch.Generator | None = None,
                batch_size: int = EVAL_BATCH) -> torch.Tensor:
    """uint8 faces -> CPU reconstructions in [0, 1]: decode(mu), or decode(mu + sigma * eps) if
    `sample` (eps drawn on the CPU from `generator`, so a seed gives the same faces on any device)."""
    model.eval()

    def one_batch(chunk: torch.Tensor) -> torch.Tensor:
        mu, logvar = model.encode(to_unit(chunk))
        if not sample:
            return model.decode(mu)
        eps = torch.randn(mu.shape, generator=generator).to(device)
        return model.decode(reparameterize(mu, logvar, eps))

    out = map_batches(one_batch, images, batch_size, device)
    if not out:
        return torch.empty(0, 3, model.image_size, model.image_size)
    return torch.cat(out)
