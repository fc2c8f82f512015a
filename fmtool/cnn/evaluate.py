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
from fmtool.engine.runs import is_run_folder, read_metrics
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


def plan_figures(run_dir: Path, out: Path | None = None,
                 force: bool = False) -> dict[str, Path]:
    """Where eval's figures go (the curves only when the run has metrics), checked before any
    work: into `out`, or the checkpoint's folder `run_dir`. In a run folder fmtool made the
    figures are fmtool's own and are rewritten; anywhere else an existing file is the user's and
    is only overwritten with `force`."""
    folder = run_dir if out is None else out
    names = ["loss_curve", "accuracy_curve"] if read_metrics(run_dir) else []
    paths = {name: folder / f"{name}.png" for name in [*names, "confusion_matrix"]}
    check_outputs(paths.values(), folder, force or (out is None and is_run_folder(run_dir)))
    return paths


def write_figures(report: dict[str, Any], run_dir: Path,
                  paths: dict[str, Path] | None = None) -> dict[str, str]:
    """Loss and accuracy curves (Figures 3 and 4) from the run's metrics, and the confusion
    matrix, at `paths` (from `plan_figures`; default: in `run_dir`). All of them or none."""
    import numpy as np

    if paths is None:
        paths = plan_figures(run_dir, force=True)
    history = read_metrics(run_dir)
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
