"""A trained VAE in use: built from a checkpoint's metadata; batched encoding and decoding."""

from __future__ import annotations

import typing
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch

from fmtool.data.faces import RESAMPLE, to_unit
from fmtool.engine.batching import map_batches
from fmtool.engine.bounds import Bounds
from fmtool.engine.checkpoint import MetadataError, load_model, meta_value
from fmtool.engine.recipe import bounds_of
from fmtool.models.vae import FaceVAE, reparameterize
from fmtool.vae.recipes import MAX_PARAMETERS, VAERecipe, parameter_count

EVAL_BATCH = 128


def build_model(meta: dict[str, Any]) -> FaceVAE:
    arch = meta["architecture"]
    return FaceVAE(image_size=arch["image_size"], latent_dim=arch["latent_dim"])


def load_vae(path: Path, device: torch.device) -> tuple[FaceVAE, dict[str, Any]]:
    """A VAE checkpoint as a ready model in eval mode, with its metadata (checked against
    `validate_meta`, its weights against the architecture: see `load_model`)."""
    return load_model(path, "vae", build_model, device, validate_meta)  # type: ignore[return-value]


def validate_meta(meta: dict[str, Any]) -> None:
    """The schema of a VAE checkpoint's metadata (what `fmtool.vae.task.checkpoint_meta`
    writes): types, the recipe's ranges, and agreement between the architecture and the
    preprocessing that `reconstruct` and `fuse` apply to faces. Raises MetadataError."""
    knobs = {f.name: f for f in fields(VAERecipe)}  # the ranges a recipe may have
    meta_value(meta, "architecture", dict)
    if meta_value(meta, "architecture.name", str, optional=True, default="FaceVAE") != "FaceVAE":
        raise MetadataError(f"its architecture is {str(meta['architecture']['name'])[:40]}, "
                            "not FaceVAE")
    size = meta_value(meta, "architecture.image_size", int,
                      bounds=bounds_of(knobs["image_size"], int))
    latent = meta_value(meta, "architecture.latent_dim", int,
                        bounds=bounds_of(knobs["latent_dim"], int))
    if parameter_count(size, latent) > MAX_PARAMETERS:
        raise MetadataError(f"its architecture ({size} px, {latent}-dim code) is larger than "
                            "any VAE fmtool trains")
    meta_value(meta, "preprocessing", dict)
    crop = meta_value(meta, "preprocessing.crop", list)
    if (len(crop) != 2 or not all(isinstance(c, int) and not isinstance(c, bool) for c in crop)
            or not 0 < crop[0] <= crop[1]):
        raise MetadataError(f"its preprocessing crop is {str(crop)[:40]}; it must be two whole "
                            "numbers 0 < keep <= of (keep/of of the shorter side)")
    prep_size = meta_value(meta, "preprocessing.image_size", int)
    if prep_size != size:
        raise MetadataError(f"its preprocessing makes {prep_size} px faces, but its model takes "
                            f"{size} px")
    if meta_value(meta, "preprocessing.resample", str, optional=True, default=RESAMPLE) != RESAMPLE:
        raise MetadataError(f"its preprocessing resamples with "
                            f"{str(meta['preprocessing']['resample'])[:20]}; fmtool uses {RESAMPLE}")
    if meta_value(meta, "preprocessing.range", list, optional=True, default=[0, 1]) != [0, 1]:
        raise MetadataError("its preprocessing scales pixels to another range than [0, 1]")
    meta_value(meta, "epoch", int, bounds=Bounds(int, 0, None), optional=True)
    for key in ("metrics", "recipe", "data", "options"):
        meta_value(meta, key, dict, optional=True)
    _check_recipe(meta, knobs)
    for key in ("data.val_images", "data.val_people"):  # what `evaluate_vae` checks a split by
        meta_value(meta, key, int, bounds=Bounds(int, 0, None), optional=True)


def _check_recipe(meta: dict[str, Any], knobs: dict[str, Any]) -> None:
    """Each number the recipe records (val_fraction is read to split the faces again) in the
    range its option allows, as for the architecture: a damaged value is one line, not a crash
    later on."""
    recipe = meta.get("recipe")
    if not isinstance(recipe, dict):
        return
    types = typing.get_type_hints(VAERecipe)
    for name, item in knobs.items():
        kind = types[name]
        if kind in (int, float) and name in recipe:
            meta_value(meta, f"recipe.{name}", int if kind is int else (int, float),
                       bounds=bounds_of(item, kind))


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
