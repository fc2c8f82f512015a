"""`fmtool classify`: user image files in, top-k labels out, bad files reported not fatal."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fmtool.cnn.inference import load_classifier, predict_logits
from fmtool.data.images import ImageReadError, load_fashion_views
from fmtool.engine.io import all_or_nothing, atomic_write, check_outputs
from fmtool.errors import Option


def seen_name(index: int, file: Path) -> str:
    """NNNN_<name>.png: numbered in the order given, so two inputs never share a name, and
    only safe characters, so the picture lands inside the folder it is written to."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", file.stem)[:80].lstrip(".") or "image"
    return f"{index:04d}_{stem}.png"


def save_seen(item: np.ndarray, path: Path) -> None:
    """The 28x28 picture the model is given, as an 8-bit grey PNG (written atomically)."""
    from PIL import Image

    with atomic_write(path) as sink:
        Image.fromarray(item).save(sink, format="PNG")


def _prepare(files: list[Path], invert: str, single_view: bool, save_input: Path | None,
             results: list[dict[str, Any]], views: list[np.ndarray]) -> None:
    """Each file's views (or its error) into `results` and `views`; the seen pictures saved."""
    for index, file in enumerate(files, start=1):
        try:
            views.append(load_fashion_views(file, invert, single=single_view))
            results.append({"path": str(file)})
        except ImageReadError as exc:
            results.append({"path": str(file), "error": str(exc)})
            continue
        if save_input is not None:
            seen = save_input / seen_name(index, file)
            save_seen(views[-1][0], seen)
            results[-1]["input"] = str(seen)


def classify_files(files: list[Path], checkpoint: Path, device: torch.device, top_k: int = 1,
                   invert: str = "auto", save_input: Path | None = None,
                   single_view: bool = False, force: bool = False) -> list[dict[str, Any]]:
    """One result per file, in order: {'path', 'predictions': [...]} or {'path', 'error'}.
    A photo is prepared several ways (`fashion_views`) and its logits averaged over them, unless
    `single_view`. With `save_input`, what the model sees for each readable file (its first
    view) is written into that folder (see `seen_name`) and its result names the picture as
    'input'; a file of that name there is the user's, refused before any work unless `force`,
    and the pictures appear together once all are prepared (or none does)."""
    if save_input is not None:
        check_outputs([save_input / seen_name(i, f) for i, f in enumerate(files, start=1)],
                      save_input, force)
    model, meta = load_classifier(checkpoint, device)
    names = meta["class_names"]
    results: list[dict[str, Any]] = []
    views: list[np.ndarray] = []
    saving = (all_or_nothing(save_input, "free some space or choose another {}",
                             Option("save_input"), overwrite=force)
              if save_input is not None else contextlib.nullcontext())
    with saving:
        _prepare(files, invert, single_view, save_input, results, views)
    if views:
        logits = predict_logits(model, torch.from_numpy(np.concatenate(views)),
                                meta["architecture"]["image_size"], device,
                                tta_flip=meta.get("tta_flip", False))
        per_file = logits.split([len(v) for v in views])
        probabilities = torch.stack([chunk.mean(0) for chunk in per_file]).softmax(1)
        k = min(top_k, len(names))
        top = probabilities.topk(k, dim=1)
        good = iter(zip(top.values.tolist(), top.indices.tolist()))
        for result in results:
            if "error" not in result:
                values, indices = next(good)
                result["predictions"] = [{"label": names[i], "probability": p}
                                         for p, i in zip(values, indices)]
    return results
