"""Classifying pictures: each prepared as Fashion-MNIST's items were, then the model's answers
averaged over its views. Files and pictures already in memory take the same road, so a picture
gets the same answer from `CNN.classify` as from `fmtool classify`; a file that cannot be read is
that file's error, never the batch's."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image

from fmtool.cnn.config import CNNConfig
from fmtool.cnn.inference import predict_logits
from fmtool.data.images import ImageReadError
from fmtool.engine.io import all_or_nothing, atomic_write, check_outputs
from fmtool.errors import Option
from fmtool.photo.views import load_many_fashion_views, prepare_fashion_views


def seen_name(index: int, file: Path | None) -> str:
    """NNNN_<name>.png: numbered in the order given, so two inputs never share a name, and
    only safe characters, so the picture lands inside the folder it is written to."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", file.stem)[:80].lstrip(".") if file else ""
    return f"{index:04d}_{stem or 'image'}.png"


def save_seen(item: np.ndarray, path: Path) -> None:
    """The 28x28 picture the model is given, as an 8-bit grey PNG (written atomically)."""
    with atomic_write(path) as sink:
        Image.fromarray(item).save(sink, format="PNG")


def views_of(sources: Sequence[Path | Image.Image | ImageReadError], invert: str,
             single_view: bool) -> list[np.ndarray | ImageReadError]:
    """Each file's or picture's 28x28 uint8 views, or the ImageReadError of a file or picture
    that cannot be used (a source that is one already stays as it is); the files are prepared
    in worker processes, side by side."""
    files = [source for source in sources if isinstance(source, Path)]
    prepared = iter(load_many_fashion_views(files, invert, single_view) if files else [])
    views: list[np.ndarray | ImageReadError] = []
    for source in sources:
        if isinstance(source, Path):
            views.append(next(prepared))
            continue
        if isinstance(source, ImageReadError):
            views.append(source)
            continue
        try:
            views.append(prepare_fashion_views(source, invert, single_view))
        except ImageReadError as exc:
            views.append(exc)
    return views


def classify_pictures(model: torch.nn.Module, config: CNNConfig, device: torch.device,
                      sources: Sequence[Path | Image.Image | ImageReadError], top_k: int = 1,
                      invert: str = "auto", single_view: bool = False,
                      save_input: Path | None = None, force: bool = False) -> list[dict[str, Any]]:
    """One result per source, in order: {'path', 'predictions': [{'label', 'probability'}]}, or
    {'path', 'error'} for a file that cannot be read or a picture that cannot be used (an
    ImageReadError given as the source: see fmtool.api.common.as_source); 'path' is None for a
    picture in memory.

    A photo is prepared several ways and its logits averaged over them, unless `single_view`.
    With `save_input`, what the model sees for each readable source (its first view) is written
    into that folder (see `seen_name`) and its result names the picture as 'input'; a file of
    that name there is the user's, refused before any work unless `force`, and the pictures
    appear together once all are prepared (or none does)."""
    def source_path(source: Path | Image.Image | ImageReadError) -> Path | None:
        return source if isinstance(source, Path) else None

    if save_input is not None:
        check_outputs([save_input / seen_name(i, source_path(s)) for i, s in enumerate(sources, 1)],
                      save_input, force, option="save_input")
    names = list(config.class_names)
    results: list[dict[str, Any]] = []
    views: list[np.ndarray] = []
    saving = (all_or_nothing(save_input, "choose another {}",
                             Option("save_input"), overwrite=force)
              if save_input is not None else contextlib.nullcontext())
    with saving:
        for index, (source, prepared) in enumerate(zip(sources, views_of(sources, invert,
                                                                         single_view)), start=1):
            path = source_path(source)
            results.append({"path": None if path is None else str(path)})
            if isinstance(prepared, ImageReadError):
                results[-1]["error"] = str(prepared)
                continue
            views.append(prepared)
            if save_input is not None:
                seen = save_input / seen_name(index, path)
                save_seen(views[-1][0], seen)
                results[-1]["input"] = str(seen)
    if not views:
        return results
    logits = predict_logits(model, torch.from_numpy(np.concatenate(views)), config.image_size,
                            device, tta_flip=config.tta_flip)
    per_source = logits.split([len(v) for v in views])
    probabilities = torch.stack([chunk.mean(0) for chunk in per_source]).softmax(1)
    top = probabilities.topk(min(top_k, len(names)), dim=1)
    readable = [result for result in results if "error" not in result]
    for result, values, indices in zip(readable, top.values.tolist(), top.indices.tolist(),
                                       strict=True):
        result["predictions"] = [{"label": names[i], "probability": p}
                                 for p, i in zip(values, indices)]
    return results
