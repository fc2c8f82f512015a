"""A trained VAE in use: built from a checkpoint's config; batched encoding and decoding."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch
from PIL import Image

from fmtool.data.faces import face_array, load_face, to_unit
from fmtool.data.images import ImageReadError
from fmtool.engine.batching import map_batches
from fmtool.engine.bounds import Bounds
from fmtool.engine.checkpoint import load_model
from fmtool.engine.recipe import check_stored
from fmtool.engine.schema import MetadataError
from fmtool.models.vae import FaceVAE, reparameterize
from fmtool.vae.config import KIND, VAEConfig
from fmtool.vae.recipes import VAERecipe

EVAL_BATCH = 128


def prepare_faces(sources: Sequence[Path | Image.Image | ImageReadError],
                  config: VAEConfig) -> tuple[torch.Tensor, list[str | None]]:
    """Files and pictures as the VAE's training faces were made (centre crop, resize): uint8
    [n_ok, 3, S, S] of those that could be read, in order, and for each source None or why it
    could not be read (a source that is an ImageReadError already: a picture in memory that
    cannot be one, see fmtool.api.common.as_source)."""
    faces, errors = [], []
    for source in sources:
        if isinstance(source, ImageReadError):
            errors.append(str(source))
            continue
        try:
            array = (load_face(source, config.image_size, config.crop) if isinstance(source, Path)
                     else face_array(source, config.image_size, config.crop))
        except ImageReadError as exc:
            errors.append(str(exc))
            continue
        faces.append(torch.from_numpy(array).permute(2, 0, 1))
        errors.append(None)
    size = config.image_size
    return (torch.stack(faces) if faces else torch.empty(0, 3, size, size, dtype=torch.uint8),
            errors)


def load_vae(path: Path, device: torch.device) -> tuple[FaceVAE, VAEConfig, dict[str, Any]]:
    """A VAE checkpoint as a ready model in eval mode, with its config and whole metadata (the
    config checked by `VAEConfig.from_meta`, the weights against it: see `load_model`)."""
    return load_model(path, KIND, _read_config, device)  # type: ignore[return-value]


def _read_config(meta: dict[str, Any]) -> VAEConfig:
    """The config, after the recipe's numbers and the split the data records (what
    `fmtool report` splits the faces again with, and checks the split by)."""
    check_stored(VAERecipe, meta.get("recipe"))
    data = meta.get("data") if isinstance(meta.get("data"), dict) else {}
    for key in ("val_images", "val_people"):
        if key in data and not Bounds(int, 0, None).accepts(data[key]):
            raise MetadataError(f"its data.{key} is {str(data[key])[:20]}, not a count")
    return VAEConfig.from_meta(meta)


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
