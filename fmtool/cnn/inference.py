"""A trained CNN in use: built from a checkpoint's own metadata, run on batches of images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from fmtool.data import fashion
from fmtool.engine.batching import map_batches
from fmtool.engine.checkpoint import load_model
from fmtool.engine.device import autocast
from fmtool.models.cnn import DROPOUT, FashionCNN

EVAL_BATCH = 500


def build_model(meta: dict[str, Any]) -> FashionCNN:
    arch = meta["architecture"]
    return FashionCNN(num_classes=arch["num_classes"], width=arch.get("width", 1.0),
                      image_size=arch["image_size"], dropout=arch.get("dropout", DROPOUT))


def load_classifier(path: Path, device: torch.device) -> tuple[FashionCNN, dict[str, Any]]:
    """A CNN checkpoint as a ready model in eval mode, with its metadata."""
    return load_model(path, "cnn", build_model, device)  # type: ignore[return-value]


def predict_logits(model: torch.nn.Module, images: torch.Tensor, image_size: int,
                   device: torch.device, batch_size: int = EVAL_BATCH,
                   dtype: torch.dtype | None = None, tta_flip: bool = False) -> torch.Tensor:
    """Logits for uint8 [N,28,28] images, in large batches under inference mode (and autocast
    when `dtype` is given); with `tta_flip` the mean of the image's and its mirror's logits.
    Returns a CPU float tensor [N, classes]."""
    model.eval()

    def logits_of(chunk: torch.Tensor) -> torch.Tensor:
        x = fashion.to_model_input(chunk, image_size)
        with autocast(device, dtype):
            logits = model(x).float()
            if tta_flip:
                logits = (logits + model(x.flip(-1)).float()) / 2
        return logits

    out = map_batches(logits_of, images, batch_size, device)
    return torch.cat(out) if out else torch.empty(0, 0)
