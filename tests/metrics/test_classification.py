"""Classification summaries are exact fractions, not float32 approximations of them."""

from __future__ import annotations

import math

import torch

from fmtool.metrics import float32_value
from fmtool.metrics.classification import classification_metrics, confusion_matrix, per_class_accuracy


def test_accuracy_is_right_over_total_as_eval_json_prints_it():
    labels = torch.zeros(10_000, dtype=torch.long)
    logits = torch.zeros(10_000, 2)
    logits[:9478, 0] = 1.0  # 9,478 right
    logits[9478:, 1] = 1.0  # the rest taken for class 1
    metrics = classification_metrics(logits, labels)
    assert metrics["accuracy"] == 0.9478  # a float32 mean gives 0.9477999806404114
    assert metrics["loss"] == float32_value(metrics["loss"])  # float32's digits, no more


def test_per_class_accuracy_divides_counts_and_leaves_an_empty_class_undefined():
    labels = torch.tensor([0] * 88 + [1] * 2)
    predictions = torch.tensor([0] * 85 + [1] * 3 + [1] * 2)
    right, perfect, empty = per_class_accuracy(confusion_matrix(predictions, labels, 3))
    assert (right, perfect) == (85 / 88, 1.0) and math.isnan(empty)


def test_a_float32_number_keeps_the_digits_float32_computed():
    assert float32_value(torch.tensor(22.144046783447266)) == 22.144047
    assert float32_value(torch.tensor(0.9478)) == 0.9478
    assert math.isnan(float32_value(float("nan")))
