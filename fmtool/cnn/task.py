"""The CNN on Fashion-MNIST as a training task for the shared Trainer.

The whole data set stays as uint8 tensors on the training device; a batch is a slice of an
index permutation, gathered and preprocessed as one tensor operation (no per-sample work).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from fmtool.cnn.config import KIND, CNNConfig, checkpoint_meta
from fmtool.cnn.inference import EVAL_BATCH, predict_logits
from fmtool.cnn.recipes import CNNRecipe
from fmtool.data import augment, fashion
from fmtool.engine import distributed
from fmtool.engine.batching import epoch_batches, seeded_permutation
from fmtool.engine.device import autocast
from fmtool.photo.jitter import photo_jitter

# Evaluation batches: on a GPU a few large ones (small ones are launch-bound; 2,500 full-width
# images need about a gigabyte for their largest activations), on a CPU the usual 500.
GPU_EVAL_BATCH = 2500


def selection_metric(val_size: int) -> str:
    """The epoch record key that picks best.pt: validation accuracy while training images are
    held out, else test accuracy (the report's own measure)."""
    return "val_acc" if val_size else "test_acc"


def split_validation(images: torch.Tensor, labels: torch.Tensor, size: int,
                     seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Holds out `size` seeded-random training images (never test images) to pick the best epoch."""
    order = seeded_permutation(len(images), seed + 1)
    keep, held = order[size:], order[:size]
    return images[keep], labels[keep], images[held], labels[held]


@dataclass
class CNNTask:
    """Cross-entropy training of the report's CNN.

    The best epoch is picked on a validation split held out from the training images
    (recipe.val_size, at most a tenth of the training images); with val_size 0 it is picked on the
    test set, the report's own measure.
    """

    data: fashion.FashionMNIST
    recipe: CNNRecipe
    device: torch.device
    width: float | None = None  # None: the recipe's width
    limit: int | None = None
    test_limit: int | None = None
    precision: torch.dtype | None = None  # autocast dtype; None = fp32

    kind = KIND
    best_mode = "max"
    # Every full batch's step runs the same kernels on tensors of the same shapes, creates its
    # tensors on the device and never reads one back: it can be replayed as a CUDA graph.
    capturable = True

    def __post_init__(self) -> None:
        r = self.recipe
        self.width = r.width if self.width is None else self.width
        train_x, train_y = fashion.subset(self.data.train_images, self.data.train_labels,
                                          self.limit, r.seed)
        self.val_size = fashion.held_out_size(r.val_size, len(train_x))
        val_x, val_y = train_x[:0], train_y[:0]
        if self.val_size:
            train_x, train_y, val_x, val_y = split_validation(train_x, train_y, self.val_size, r.seed)
        test_x, test_y = fashion.subset(self.data.test_images, self.data.test_labels,
                                        self.test_limit, r.seed)
        # The whole data set lives on the training device; batches are index slices of it.
        self.train_x, self.train_y = train_x.to(self.device), train_y.to(self.device)
        self.val_x, self.val_y = val_x.to(self.device), val_y
        self.test_x, self.test_y = test_x.to(self.device), test_y
        self.best_metric = selection_metric(self.val_size)
        self.config = CNNConfig.from_recipe(r, width=self.width)
        self.model = self.config.build()

    def batches(self, epoch: int) -> list[torch.Tensor]:
        return epoch_batches(len(self.train_x), self.recipe.batch_size, self.recipe.seed, epoch)

    def step(self, model: torch.nn.Module,
             batch: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        r = self.recipe
        batch = batch.to(self.device, non_blocking=True)
        images = augment.random_crop(self.train_x[batch], r.crop_padding)
        if r.flip:
            images = augment.random_flip(images)
        x = photo_jitter(fashion.to_unit(images), r.photo_jitter, r.photo_strength)
        x = augment.random_erase(fashion.normalise(x, r.image_size, self.config.scaling), r.erase)
        y = self.train_y[batch]
        with autocast(self.device, self.precision):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=r.label_smoothing)
        sums = {"loss": loss.detach() * len(y), "correct": (logits.argmax(1) == y).sum(),
                "count": torch.full((), float(len(y)), device=y.device)}
        return loss, sums

    def summarize(self, sums: dict[str, float]) -> dict[str, float]:
        n = max(sums.get("count", 0.0), 1.0)
        return {"train_loss": sums.get("loss", 0.0) / n, "train_acc": sums.get("correct", 0.0) / n}

    def status(self, sums: dict[str, float]) -> str:
        m = self.summarize(sums)
        return f"loss {m['train_loss']:.3f} acc {m['train_acc']:.3f}"

    def evaluate(self, model: torch.nn.Module) -> dict[str, float]:
        """Validation (when held out) and test loss and accuracy of `model`."""
        metrics = {}
        if self.val_size:
            metrics.update(self._score(model, self.val_x, self.val_y, "val"))
        metrics.update(self._score(model, self.test_x, self.test_y, "test"))
        return metrics

    def _score(self, model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor,
               prefix: str) -> dict[str, float]:
        """Under torchrun each rank scores its share and the sums meet."""
        rank, world = distributed.rank(), distributed.world_size()
        images, labels = images[rank::world], labels[rank::world]
        batch = GPU_EVAL_BATCH if self.device.type == "cuda" else EVAL_BATCH
        logits = predict_logits(model, images, self.recipe.image_size, self.device, batch,
                                dtype=self.precision, tta_flip=self.recipe.tta_flip)
        sums = {"loss": float(F.cross_entropy(logits, labels, reduction="sum")),
                "correct": float((logits.argmax(1) == labels).sum()), "count": float(len(labels))}
        sums = distributed.all_reduce_sums(sums, self.device)
        count = max(sums["count"], 1.0)
        return {f"{prefix}_loss": sums["loss"] / count, f"{prefix}_acc": sums["correct"] / count}

    def meta(self) -> dict[str, Any]:
        data = {"train_images": len(self.train_x), "val_images": self.val_size,
                "test_images": len(self.test_x), "source": str(self.data.source)}
        return checkpoint_meta(self.config, self.recipe, data)

    def after_epoch(self, run_dir: Path, epoch: int) -> None:
        return None
