"""Classification summaries: confusion matrix and per-class accuracy."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F


def confusion_matrix(predictions: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Rows are true classes, columns predicted classes, entries counts (int64)."""
    index = labels.long() * num_classes + predictions.long()
    return torch.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def per_class_accuracy(matrix: torch.Tensor) -> list[float]:
    """Each class's share of its images classified right; NaN for a class with no image (its
    accuracy is undefined, not 0: shown as n/a, and as null in JSON)."""
    totals = matrix.sum(1).float()
    return (matrix.diag().float() / totals).tolist()


def classification_metrics(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, Any]:
    """Mean cross-entropy, accuracy and the predicted class of every example."""
    labels = labels.cpu()
    predictions = logits.argmax(1)
    return {
        "loss": float(F.cross_entropy(logits, labels)),
        "accuracy": float((predictions == labels).float().mean()),
        "predictions": predictions,
    }
