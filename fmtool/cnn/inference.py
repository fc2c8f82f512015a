"""A trained CNN in use: built from a checkpoint's own metadata, run on batches of images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from fmtool.cnn.config import KIND, CNNConfig
from fmtool.cnn.recipes import CNNRecipe
from fmtool.data import fashion
from fmtool.engine.batching import map_batches
from fmtool.engine.checkpoint import load_model
from fmtool.engine.device import autocast
from fmtool.engine.recipe import check_stored
from fmtool.models.cnn import FashionCNN

EVAL_BATCH = 500


def load_classifier(path: Path, device: torch.device) -> tuple[FashionCNN, CNNConfig, dict[str, Any]]:
    """A CNN checkpoint as a ready model in eval mode, with its config and whole metadata (the
    config checked by `CNNConfig.from_meta`, the weights against it: see `load_model`)."""
    return load_model(path, KIND, _read_config, device)  # type: ignore[return-value]


def _read_config(meta: dict[str, Any]) -> CNNConfig:
    check_stored(CNNRecipe, meta.get("recipe"))
    return CNNConfig.from_meta(meta)


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
