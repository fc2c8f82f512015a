"""Classification summaries: confusion matrix and per-class accuracy."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from fmtool.metrics import float32_value


def confusion_matrix(predictions: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Rows are true classes, columns predicted classes, entries counts (int64)."""
    index = labels.long() * num_classes + predictions.long()
    return torch.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def per_class_accuracy(matrix: torch.Tensor) -> list[float]:
    """Each class's share of its images classified right, right / total in Python floats (a
    float32 division would give 0.9659090638160706 for 85/88); NaN for a class with no image
    (its accuracy is undefined, not 0: shown as n/a, and as null in JSON)."""
    return [right / total if total else float("nan")
            for right, total in zip(matrix.diag().tolist(), matrix.sum(1).tolist())]


def classification_metrics(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, Any]:
    """Mean cross-entropy, accuracy (exactly right / total: 0.9478, not a float32's
    0.9477999806404114) and the predicted class of every example."""
    labels = labels.cpu()
    predictions = logits.argmax(1)
    return {
        "loss": float32_value(F.cross_entropy(logits, labels)),
        "accuracy": int((predictions == labels).sum()) / len(labels),
        "predictions": predictions,
    }
