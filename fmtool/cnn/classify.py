"""`fmtool classify`: user image files in, top-k labels out, bad files reported not fatal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from fmtool.cnn.inference import load_classifier, predict_logits
from fmtool.data.images import ImageReadError, load_fashion_item


def classify_files(files: list[Path], checkpoint: Path, device: torch.device, top_k: int = 1,
                   invert: str = "auto") -> list[dict[str, Any]]:
    """One result per file, in order: {'path', 'predictions': [...]} or {'path', 'error'}."""
    model, meta = load_classifier(checkpoint, device)
    names = meta["class_names"]
    results: list[dict[str, Any]] = []
    items: list[np.ndarray] = []
    for file in files:
        try:
            items.append(load_fashion_item(file, invert))
            results.append({"path": str(file)})
        except ImageReadError as exc:
            results.append({"path": str(file), "error": str(exc)})
    if items:
        batch = torch.from_numpy(np.stack(items))
        probabilities = predict_logits(model, batch, meta["architecture"]["image_size"], device,
                                       tta_flip=meta.get("tta_flip", False)).softmax(1)
        k = min(top_k, len(names))
        top = probabilities.topk(k, dim=1)
        good = iter(zip(top.values.tolist(), top.indices.tolist()))
        for result in results:
            if "error" not in result:
                values, indices = next(good)
                result["predictions"] = [{"label": names[i], "probability": p}
                                         for p, i in zip(values, indices)]
    return results
