"""`fmtool eval`: test-set numbers of a CNN checkpoint and the report's figures for its run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from fmtool.cnn.config import CNNConfig
from fmtool.cnn.inference import predict_logits
from fmtool.data import fashion
from fmtool.engine.device import precision_name
from fmtool.engine.io import all_or_nothing, check_outputs
from fmtool.errors import Option
from fmtool.metrics import plots
from fmtool.metrics.classification import classification_metrics, confusion_matrix, per_class_accuracy


def evaluate_model(model: torch.nn.Module, config: CNNConfig, device: torch.device,
                   data_dir: Path | None = None, limit: int | None = None,
                   precision: torch.dtype | None = None) -> dict[str, Any]:
    """Accuracy, loss, per-class accuracy and confusion matrix on the (optionally limited)
    test set."""
    data = fashion.load_fashion_mnist(data_dir)
    images, labels = fashion.subset(data.test_images, data.test_labels, limit, seed=0)
    logits = predict_logits(model, images, config.image_size, device, dtype=precision,
                            tta_flip=config.tta_flip)
    metrics = classification_metrics(logits, labels)
    names = list(config.class_names)
    matrix = confusion_matrix(metrics["predictions"], labels, len(names))
    return {
        "precision": precision_name(precision),
        "images": len(labels),
        "accuracy": metrics["accuracy"],
        "loss": metrics["loss"],
        "per_class_accuracy": dict(zip(names, per_class_accuracy(matrix))),
        "confusion_matrix": matrix.tolist(),
        "class_names": names,
    }


def plan_figures(history: list[dict[str, Any]], folder: Path,
                 force: bool = False) -> dict[str, Path]:
    """Where eval's figures go in `folder` (the curves only when there is a `history`), checked
    before any work. In a run folder fmtool made the figures are fmtool's own and are rewritten
    (`force`); anywhere else an existing file is the user's and is only overwritten with
    `force`."""
    names = ["loss_curve", "accuracy_curve"] if history else []
    paths = {name: folder / f"{name}.png" for name in [*names, "confusion_matrix"]}
    check_outputs(paths.values(), folder, force)
    return paths


def write_figures(report: dict[str, Any], history: list[dict[str, Any]],
                  paths: dict[str, Path]) -> dict[str, str]:
    """Loss and accuracy curves (Figures 3 and 4) from the run's `history`, and the confusion
    matrix, at `paths` (from `plan_figures`). All of them or none."""
    import numpy as np

    with all_or_nothing(paths["confusion_matrix"].parent, "choose another {}", Option("out")):
        if "loss_curve" in paths:
            plots.curves(history, [("train_loss", "train"), ("test_loss", "test")],
                         "cross-entropy loss", "Loss per epoch", paths["loss_curve"])
        if "accuracy_curve" in paths:
            plots.curves(history, [("train_acc", "train"), ("test_acc", "test")], "accuracy",
                         "Accuracy per epoch", paths["accuracy_curve"])
        plots.confusion(np.asarray(report["confusion_matrix"]), report["class_names"],
                        paths["confusion_matrix"])
    return {name: str(path) for name, path in paths.items()}
