"""What a named layer of the CNN outputs for a sample of images, captured with forward hooks.

The model runs in batches under `torch.inference_mode`; each hooked layer's output is flattened
to one feature row per image and kept on the CPU as float32. The forward pass stops right after
the deepest requested layer (layer names run in forward order), so projecting `conv2` does not pay
for conv3..output. Activations of many layers at 10,000 images would not fit in memory together
(conv2 alone is 64x32x32 = 65,536 floats per image), so `layer_groups` splits a request into
groups that each fit a memory budget and are captured (and can be freed) one after another.
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import torch

from fmtool.data import fashion
from fmtool.engine.batching import chunks
from fmtool.errors import Option, UserError
from fmtool.models.cnn import LAYER_NAMES, FashionCNN

BATCH = 256
MEMORY_BUDGET = 2 * 1024**3  # bytes of float32 activations held at once


class _Done(Exception):
    """Raised by the hook of the deepest requested layer: the rest of the forward pass is skipped."""


def parse_layers(text: str) -> list[str]:
    """'conv9, linear1,output' -> ['conv9', 'linear1', 'output'] ('all' = every layer), in the
    order given, without repeats; an unknown name, or all beside other names, is a one-line
    UserError."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if names == ["all"]:
        return list(LAYER_NAMES)
    if "all" in names:  # every layer already; with others it would say two things at once
        raise UserError("all stands alone (it means every layer); give all, or the layers "
                        "you want, comma-separated, from {}", ", ".join(LAYER_NAMES))
    unknown = [name for name in names if name not in LAYER_NAMES]
    if unknown or not names:
        what = f"unknown layer {', '.join(map(repr, unknown))}" if unknown else "no layer given"
        raise UserError("{}; choose from {} or all (comma-separated; see {})", what,
                        ", ".join(LAYER_NAMES), Option("list_layers"))
    return list(dict.fromkeys(names))


def sample_per_class(labels: torch.Tensor, per_class: int, seed: int,
                     num_classes: int) -> torch.Tensor:
    """Indices of up to `per_class` images of every class, drawn with a seeded generator.

    The shared Fashion-MNIST copy is sorted by label, so taking the first N would give one class;
    each class is drawn from its own images instead. The chosen indices are then shuffled together
    so that no class is always drawn on top of the others in a scatter plot.
    """
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for label in range(num_classes):
        members = torch.nonzero(labels == label).flatten()
        chosen.append(members[torch.randperm(len(members), generator=generator)[:per_class]])
    picked = torch.cat(chosen)
    return picked[torch.randperm(len(picked), generator=generator)]


def _hooks(model: FashionCNN, layers: Sequence[str], store: dict[str, list[torch.Tensor]],
           stop_after: str | None) -> list[torch.utils.hooks.RemovableHandle]:
    def hook_for(name: str):
        def hook(_module, _inputs, output: torch.Tensor) -> None:
            store[name].append(output.detach().flatten(1).float().cpu())
            if name == stop_after:
                raise _Done

        return hook

    return [model.named_layer(name).register_forward_hook(hook_for(name)) for name in layers]


def _deepest(layers: Iterable[str]) -> str:
    return max(layers, key=LAYER_NAMES.index)


def layer_shapes(model: FashionCNN, image_size: int) -> dict[str, tuple[int, ...]]:
    """Every named layer's output shape for one image, e.g. {'conv9': (512, 8, 8), ...}."""
    device = next(model.parameters()).device
    shapes: dict[str, tuple[int, ...]] = {}

    def record(name: str):
        def hook(_module, _inputs, output: torch.Tensor) -> None:
            shapes[name] = tuple(output.shape[1:])

        return hook

    handles = [model.named_layer(name).register_forward_hook(record(name)) for name in LAYER_NAMES]
    try:
        with torch.inference_mode():
            model.eval()(torch.zeros(1, 1, image_size, image_size, device=device))
    finally:
        for handle in handles:
            handle.remove()
    return {name: shapes[name] for name in LAYER_NAMES}


def layer_groups(layers: Sequence[str], features: dict[str, int], count: int,
                 budget: int = MEMORY_BUDGET) -> list[list[str]]:
    """Splits `layers` (in the given order) into groups whose float32 activations for `count`
    images fit `budget` bytes; a layer larger than the budget on its own gets its own group."""
    groups: list[list[str]] = []
    used = math.inf
    for name in layers:
        size = features[name] * count * 4
        if used + size > budget:
            groups.append([])
            used = 0
        groups[-1].append(name)
        used += size
    return groups


def capture(model: FashionCNN, images: torch.Tensor, layers: Sequence[str], image_size: int,
            device: torch.device, batch_size: int = BATCH,
            on_batch=None) -> dict[str, torch.Tensor]:
    """Flattened outputs of `layers` for uint8 [N,28,28] images (scaled as the model's variant
    reads them): {name: float32 [N, features]}.

    `on_batch(n)` is called after each batch of n images (for a progress bar).
    """
    if not layers:
        raise ValueError("no layers to capture")
    model.eval()
    store: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
    handles = _hooks(model, layers, store, stop_after=_deepest(layers))
    try:
        with torch.inference_mode():
            for chunk in chunks(images, batch_size):
                try:
                    model(fashion.to_model_input(chunk.to(device, non_blocking=True), image_size,
                                                 model.input_scaling))
                except _Done:
                    pass
                if on_batch is not None:
                    on_batch(len(chunk))
    finally:
        for handle in handles:
            handle.remove()
    return {name: torch.cat(parts) if parts else torch.empty(0, 0) for name, parts in store.items()}
