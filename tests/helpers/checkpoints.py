"""Checkpoints for tests, built by fmtool's own builders (the config, `checkpoint_meta`, the
network the config builds) and saved as a training run saves them, never written by hand."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from fmtool.cnn.config import CNNConfig
from fmtool.cnn.config import checkpoint_meta as cnn_checkpoint_meta
from fmtool.cnn.recipes import PAPER as CNN_PAPER
from fmtool.cnn.recipes import CNNRecipe
from fmtool.engine.checkpoint import Checkpoint, save_checkpoint
from fmtool.vae.config import VAEConfig
from fmtool.vae.config import checkpoint_meta as vae_checkpoint_meta
from fmtool.vae.recipes import PAPER as VAE_PAPER

TINY_WIDTH = 0.0625  # 1/16 of the report's channels: a CNN that runs in milliseconds


def cnn_meta(recipe: CNNRecipe = CNN_PAPER, width: float = TINY_WIDTH,
             class_names: list[str] | None = None, epoch: int = 1,
             data: dict[str, Any] | None = None) -> dict[str, Any]:
    """A CNN checkpoint's metadata as a training run writes it: the task's (config, recipe,
    data) and what the Trainer adds (options, epoch, metrics)."""
    config = CNNConfig.from_recipe(recipe, width=width)
    if class_names is not None:
        config = replace(config, class_names=tuple(class_names))
    return {**cnn_checkpoint_meta(config, recipe, data), "options": {}, "epoch": epoch,
            "metrics": {}}


def save_cnn(path: Path, recipe: CNNRecipe = CNN_PAPER, width: float = TINY_WIDTH, seed: int = 0,
             class_names: list[str] | None = None, epoch: int = 1,
             data: dict[str, Any] | None = None) -> Path:
    """An untrained CNN (weights seeded) saved as `train cnn` saves its best.pt."""
    meta = cnn_meta(recipe, width, class_names, epoch, data)
    torch.manual_seed(seed)
    model = CNNConfig.from_dict(meta["config"]).build().eval()
    save_checkpoint(path, Checkpoint(meta, model.state_dict()))
    return path


def vae_meta(image_size: int = 32, latent_dim: int = 8,
             data: dict[str, Any] | None = None) -> dict[str, Any]:
    """A VAE checkpoint's metadata as a training run writes it (`data`: what it records of its
    faces, as `FaceSplits.info`)."""
    recipe = VAE_PAPER.with_overrides(image_size=image_size, latent_dim=latent_dim)
    return {**vae_checkpoint_meta(VAEConfig.from_recipe(recipe), recipe, data), "options": {},
            "epoch": 0, "metrics": {}}


def save_vae(path: Path, image_size: int = 32, latent_dim: int = 8, seed: int = 0,
             data: dict[str, Any] | None = None) -> Path:
    """An untrained VAE (weights seeded) saved as `train vae` saves one."""
    meta = vae_meta(image_size, latent_dim, data)
    torch.manual_seed(seed)
    model = VAEConfig.from_dict(meta["config"]).build()
    save_checkpoint(path, Checkpoint(meta, model.state_dict()))
    return path


LEGACY_METAS = Path(__file__).resolve().parents[1] / "fixtures"


def legacy_checkpoint(kind: str, seed: int = 0) -> Checkpoint:
    """A checkpoint in the layout fmtool 0.1 wrote, before configs: the metadata of the model
    0.1 shipped (tests/fixtures/KIND-0.1-meta.json, its card included) with seeded weights of
    the network that metadata describes."""
    meta = json.loads((LEGACY_METAS / f"{kind}-0.1-meta.json").read_text())
    config = {"cnn": CNNConfig, "vae": VAEConfig}[kind].from_meta(meta)
    torch.manual_seed(seed)
    return Checkpoint(meta, config.build().state_dict())


def save_legacy(path: Path, kind: str, seed: int = 0) -> Path:
    """`legacy_checkpoint` saved as fmtool 0.1 saved it (format version 1)."""
    checkpoint = legacy_checkpoint(kind, seed)
    torch.save({"format_version": 1, "meta": json.dumps(checkpoint.meta),
                "model": checkpoint.model}, path)
    return path
