"""The CNN as a file that runs without fmtool (ONNX or TorchScript), preprocessing included.

The exported graph takes what any Fashion-MNIST reader has at hand: float32 [N, 1, 28, 28] in
[0, 1] (pixel / 255), a light item on black, and does inside what `predict_logits` does: the
bilinear resize to the model's size, the variant's scaling (`fashion.normalise`, the same code),
and, when the checkpoint evaluates with flip test-time augmentation, the mean of the image's and
its mirror's logits. So its logits are fmtool's in fp32, and no user has to reproduce fmtool's
mean and std or resize. The file's metadata names the classes in order and the input contract.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from fmtool import __version__
from fmtool.choices import ExportFormat
from fmtool.data import fashion
from fmtool.engine import export
from fmtool.models.cnn import FashionCNN

INPUT = "images"
OUTPUT = "logits"
PICTURE = ("one item, centred, light on a black background, grey (as Fashion-MNIST's images); "
           "values are pixel / 255")


class ExportedClassifier(nn.Module):
    """float [N, 1, 28, 28] in [0, 1] -> logits [N, classes], as `predict_logits` computes them."""

    def __init__(self, model: FashionCNN, image_size: int, tta_flip: bool) -> None:
        super().__init__()
        self.model = model
        self.image_size = image_size
        self.scaling = model.input_scaling
        self.tta_flip = tta_flip

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        # normalise scales in place: the caller's tensor (a TorchScript user's) must stay as it is
        x = fashion.normalise(images.clone(), self.image_size, self.scaling)
        logits = self.model(x)
        if self.tta_flip:
            logits = (logits + self.model(x.flip(-1))) / 2
        return logits


def _example(batch: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    return (torch.rand(batch, 1, fashion.SOURCE_SIZE, fashion.SOURCE_SIZE, generator=generator),)


METHOD = export.Method("forward", (INPUT,), (OUTPUT,), _example)


def classifier_metadata(class_names: Sequence[str], image_size: int, scaling: str,
                        tta_flip: bool) -> dict[str, Any]:
    """What the exported file says about itself: classes, input contract, the preprocessing
    done inside."""
    source = fashion.SOURCE_SIZE
    scaled = (f"standardised with mean {fashion.MEAN} and std {fashion.STD}" if scaling == "standard"
              else "min-max scaled per image to [0, 1]")
    inside = f"bilinear resize {source} -> {image_size} px (align_corners false), {scaled}"
    if tta_flip:
        inside += ", logits averaged with those of the mirrored image"
    scaling_detail: dict[str, Any] = {"name": scaling}
    if scaling == "standard":
        scaling_detail.update(mean=fashion.MEAN, std=fashion.STD)
    return {
        "description": f"fmtool's Fashion-MNIST CNN: {INPUT} [N, 1, {source}, {source}] float32 in "
                       f"[0, 1] -> {OUTPUT} [N, {len(class_names)}]; the label is "
                       "class_names[argmax], softmax gives probabilities",
        "fmtool_version": __version__,
        "model": "cnn",
        "class_names": list(class_names),
        "input_name": INPUT,
        "input_shape": ["N", 1, source, source],
        "input_dtype": "float32",
        "input_range": [0, 1],
        "input_picture": PICTURE,
        "output_name": OUTPUT,
        "output_shape": ["N", len(class_names)],
        "image_size": image_size,
        "scaling": scaling_detail,
        "tta_flip": tta_flip,
        "preprocessing_inside": inside,
    }


def export_classifier(model: FashionCNN, *, class_names: Sequence[str], image_size: int,
                      tta_flip: bool, path: Path, format: str | ExportFormat,
                      force: bool = False) -> Path:
    """Writes `model` to `path` as ONNX (.onnx) or TorchScript (.pt, .pth), preprocessing and
    `tta_flip` inside; returns `path`.

    `image_size` is the model's input size (its config's image_size); its
    scaling is the model's own (`model.input_scaling`). The model is copied to the CPU in fp32;
    the caller's stays as it is. Raises UserError, before any work, for an existing `path`
    (unless `force`), an unknown format, a suffix of another format or a missing export extra
    (ONNX); and for a failed write (nothing is left behind)."""
    export.check_targets([path], force)
    chosen = export.parse_format(format, path)
    module = ExportedClassifier(export.for_export(model), image_size, tta_flip)
    metadata = classifier_metadata(class_names, image_size, model.input_scaling, tta_flip)
    if chosen is ExportFormat.onnx:
        data = export.onnx_bytes(module, METHOD, metadata)
    else:
        data = export.torchscript_bytes(module, [METHOD], metadata)
    return export.write_files({path: data}, overwrite=force)[0]
