"""A trained CNN in use: built from a checkpoint's own metadata, run on batches of images."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import torch

from fmtool.cnn.recipes import CNNRecipe
from fmtool.data import fashion
from fmtool.engine.batching import map_batches
from fmtool.engine.bounds import Bounds
from fmtool.engine.checkpoint import MetadataError, load_model, meta_value
from fmtool.engine.device import autocast
from fmtool.engine.recipe import bounds_of
from fmtool.models.cnn import DROPOUT, INPUT_SCALING, VARIANTS, FashionCNN

EVAL_BATCH = 500


def build_model(meta: dict[str, Any]) -> FashionCNN:
    """The network a checkpoint's metadata describes; checkpoints from before the variants
    existed hold the `text` network."""
    arch = meta["architecture"]
    return FashionCNN(num_classes=arch["num_classes"], width=arch.get("width", 1.0),
                      image_size=arch["image_size"], dropout=arch.get("dropout", DROPOUT),
                      variant=arch.get("variant", "text"))


def load_classifier(path: Path, device: torch.device) -> tuple[FashionCNN, dict[str, Any]]:
    """A CNN checkpoint as a ready model in eval mode, with its metadata (checked against
    `validate_meta`, its weights against the architecture: see `load_model`)."""
    return load_model(path, "cnn", build_model, device, validate_meta)  # type: ignore[return-value]


MAX_CLASSES = 1000
MAX_CLASS_NAME = 200


def validate_meta(meta: dict[str, Any]) -> None:
    """The schema of a CNN checkpoint's metadata (what `fmtool.cnn.task.checkpoint_meta`
    writes): types, the recipe's ranges, and agreement between fields. Keys that older
    checkpoints lack are optional with the defaults `build_model` uses. Raises MetadataError."""
    knobs = {f.name: f for f in fields(CNNRecipe)}  # the ranges a recipe may have
    limits = {"image_size": bounds_of(knobs["image_size"], int),
              "width": bounds_of(knobs["width"], float),
              "dropout": bounds_of(knobs["dropout"], float)}
    meta_value(meta, "architecture", dict)
    if meta_value(meta, "architecture.name", str, optional=True, default="FashionCNN") != "FashionCNN":
        raise MetadataError(f"its architecture is {str(meta['architecture']['name'])[:40]}, "
                            "not FashionCNN")
    classes = meta_value(meta, "architecture.num_classes", int, bounds=Bounds(int, 2, MAX_CLASSES))
    meta_value(meta, "architecture.image_size", int, bounds=limits["image_size"])
    meta_value(meta, "architecture.width", (int, float), bounds=limits["width"], optional=True)
    meta_value(meta, "architecture.dropout", (int, float), bounds=limits["dropout"], optional=True)
    variant = meta_value(meta, "architecture.variant", str, optional=True, default="text")
    if variant not in VARIANTS:
        raise MetadataError(f"its architecture's variant is {variant[:40]!r}, not "
                            f"{' or '.join(VARIANTS)}")
    if meta_value(meta, "architecture.in_channels", int, optional=True, default=1) != 1:
        raise MetadataError("its architecture takes more than one channel; Fashion-MNIST is grey")
    names = meta_value(meta, "class_names", list)
    if len(names) != classes:
        raise MetadataError(f"it names {len(names)} classes for a model of {classes}")
    if not all(isinstance(n, str) and 0 < len(n) <= MAX_CLASS_NAME for n in names):
        raise MetadataError(f"its class names must be texts of 1 to {MAX_CLASS_NAME} characters")
    if len(set(names)) != len(names):
        raise MetadataError("its class names repeat")
    _check_normalization(meta, variant)
    meta_value(meta, "tta_flip", bool, optional=True)
    meta_value(meta, "epoch", int, bounds=Bounds(int, 0, None), optional=True)
    for key in ("metrics", "recipe", "data", "options"):
        meta_value(meta, key, dict, optional=True)


def _check_normalization(meta: dict[str, Any], variant: str) -> None:
    """Inference always feeds 28x28 images scaled as the variant reads them (standardised with
    fmtool's constants, or min-max): a model that expects anything else would give wrong answers
    without a word. Checkpoints from before the variants say no scaling: theirs is standard."""
    if meta_value(meta, "normalization", dict, optional=True) is None:
        return
    scaling = meta_value(meta, "normalization.scaling", str, optional=True, default="standard")
    if scaling != INPUT_SCALING[variant]:
        raise MetadataError(f"its inputs are scaled {scaling[:40]!r}, but the {variant} network "
                            f"reads them {INPUT_SCALING[variant]!r}")
    size = meta_value(meta, "normalization.source_size", int, optional=True,
                      default=fashion.SOURCE_SIZE)
    if size != fashion.SOURCE_SIZE:
        raise MetadataError(f"it expects inputs of {size} px; fmtool gives {fashion.SOURCE_SIZE} px")
    if scaling == "standard":
        mean = meta_value(meta, "normalization.mean", (int, float), bounds=Bounds(float, 0, 1))
        std = meta_value(meta, "normalization.std", (int, float),
                         bounds=Bounds(float, 0, 10, min_open=True))
        if abs(mean - fashion.MEAN) > 1e-6 or abs(std - fashion.STD) > 1e-6:
            raise MetadataError(f"it expects inputs normalised with mean {mean:g} and std "
                                f"{std:g}; fmtool gives {fashion.MEAN:g} and {fashion.STD:g}")


def predict_logits(model: FashionCNN, images: torch.Tensor, image_size: int,
                   device: torch.device, batch_size: int = EVAL_BATCH,
                   dtype: torch.dtype | None = None, tta_flip: bool = False) -> torch.Tensor:
    """Logits for uint8 [N,28,28] images, in large batches under inference mode (and autocast
    when `dtype` is given), scaled as the model's variant reads them; with `tta_flip` the mean
    of the image's and its mirror's logits. Returns a CPU float tensor [N, classes]."""
    model.eval()

    def logits_of(chunk: torch.Tensor) -> torch.Tensor:
        x = fashion.to_model_input(chunk, image_size, model.input_scaling)
        with autocast(device, dtype):
            logits = model(x).float()
            if tta_flip:
                logits = (logits + model(x.flip(-1)).float()) / 2
        return logits

    out = map_batches(logits_of, images, batch_size, device)
    return torch.cat(out) if out else torch.empty(0, 0)
