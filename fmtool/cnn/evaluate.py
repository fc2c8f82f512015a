"""`fmtool eval`: test-set numbers of a CNN checkpoint and the report's figures for its run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from fmtool.cnn.inference import load_classifier, predict_logits
from fmtool.data import fashion
from fmtool.engine.device import precision_name
from fmtool.engine.runs import read_metrics
from fmtool.metrics import plots
from fmtool.metrics.classification import classification_metrics, confusion_matrix, per_class_accuracy


def evaluate_checkpoint(path: Path, device: torch.device, data_dir: Path | None = None,
                        limit: int | None = None,
                        precision: torch.dtype | None = None) -> dict[str, Any]:
    """Accuracy, loss, per-class accuracy and confusion matrix on the (optionally limited) test set."""
    model, meta = load_classifier(path, device)
    data = fashion.load_fashion_mnist(data_dir)
    images, labels = fashion.subset(data.test_images, data.test_labels, limit, seed=0)
    logits = predict_logits(model, images, meta["architecture"]["image_size"], device,
                            dtype=precision, tta_flip=meta.get("tta_flip", False))
    metrics = classification_metrics(logits, labels)
    names = meta["class_names"]
    matrix = confusion_matrix(metrics["predictions"], labels, len(names))
    return {
        "checkpoint": str(path),
        "precision": precision_name(precision),
        "epoch": meta.get("epoch"),
        "images": len(labels),
        "accuracy": metrics["accuracy"],
        "loss": metrics["loss"],
        "per_class_accuracy": dict(zip(names, per_class_accuracy(matrix))),
        "confusion_matrix": matrix.tolist(),
        "class_names": names,
    }


def write_figures(report: dict[str, Any], run_dir: Path) -> dict[str, str]:
    """Loss and accuracy curves (Figures 3 and 4) from the run's metrics, and the confusion matrix."""
    import numpy as np

    written: dict[str, str] = {}
    history = read_metrics(run_dir)
    if history:
        written["loss_curve"] = str(plots.curves(
            history, [("train_loss", "train"), ("test_loss", "test")], "cross-entropy loss",
            "Loss per epoch", run_dir / "loss_curve.png"))
        written["accuracy_curve"] = str(plots.curves(
            history, [("train_acc", "train"), ("test_acc", "test")], "accuracy",
            "Accuracy per epoch", run_dir / "accuracy_curve.png"))
    written["confusion_matrix"] = str(plots.confusion(
        np.asarray(report["confusion_matrix"]), report["class_names"],
        run_dir / "confusion_matrix.png"))
    return written
