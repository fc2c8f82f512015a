"""What the API's calls return: plain, typed results whose `to_dict()` is exactly what the
matching command prints with --json, so a script and a shell pipeline see the same numbers."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Classification:
    """One picture's answer: `label` and `probability` are the top prediction, `predictions`
    the top-k (label, probability) pairs, best first. `path` is None for a picture given in
    memory; for a file that could not be read, `error` says why and there are no predictions.
    `input` is the picture the model saw, where `save_input` wrote it."""

    path: Path | None
    predictions: list[tuple[str, float]] = field(default_factory=list)
    error: str | None = None
    input: Path | None = None

    @property
    def label(self) -> str | None:
        return self.predictions[0][0] if self.predictions else None

    @property
    def probability(self) -> float | None:
        return self.predictions[0][1] if self.predictions else None

    @classmethod
    def from_dict(cls, result: dict[str, Any]) -> "Classification":
        path = result["path"]
        return cls(path=None if path is None else Path(path),
                   predictions=[(p["label"], p["probability"]) for p in result.get("predictions", [])],
                   error=result.get("error"),
                   input=Path(result["input"]) if "input" in result else None)

    def to_dict(self) -> dict[str, Any]:
        """As `fmtool classify --json` prints it (path first, then input or error)."""
        out: dict[str, Any] = {"path": None if self.path is None else str(self.path)}
        if self.error is not None:
            out["error"] = self.error
            return out
        if self.input is not None:
            out["input"] = str(self.input)
        out["predictions"] = [{"label": label, "probability": p} for label, p in self.predictions]
        return out


@dataclass(frozen=True)
class Evaluation:
    """Test-set figures of a CNN: `accuracy` and mean cross-entropy `loss` over `images` test
    images, `per_class` accuracy by class name, and the `confusion` matrix (rows: the true
    class, columns: the predicted one, in `class_names` order)."""

    checkpoint: Path | None
    epoch: int | None
    precision: str
    images: int
    accuracy: float
    loss: float
    per_class: dict[str, float]
    confusion: list[list[int]]
    class_names: list[str]

    def to_dict(self) -> dict[str, Any]:
        """As `fmtool eval --json` prints it (before the figures it lists)."""
        return {"checkpoint": None if self.checkpoint is None else str(self.checkpoint),
                "precision": self.precision, "epoch": self.epoch, "images": self.images,
                "accuracy": self.accuracy, "loss": self.loss,
                "per_class_accuracy": dict(self.per_class), "confusion_matrix": self.confusion,
                "class_names": list(self.class_names)}


@dataclass(frozen=True)
class LayerProjection:
    """One layer's 2-D map of the sampled test images: `points` [N, 2] in the order of
    `labels` (class indices) and `indices` (positions in the test set), and how well the classes
    separate there: 5-NN accuracy (1.0 perfect, 1/classes chance) and silhouette (-1..1). PCA
    also says how much variance its two axes keep. `figure` and `csv` are set where saved."""

    layer: str
    method: str
    features: int
    points: np.ndarray
    labels: np.ndarray
    indices: np.ndarray
    knn_accuracy: float | None
    silhouette: float | None
    explained_variance: float | None
    seconds: float
    figure: Path | None = None
    csv: Path | None = None

    def scores(self) -> dict[str, Any]:
        """This layer's row of `fmtool project --json`'s "layers"."""
        return {"layer": self.layer, "features": self.features, "knn_accuracy": self.knn_accuracy,
                "silhouette": self.silhouette, "explained_variance": self.explained_variance,
                "seconds": round(self.seconds, 3)}


@dataclass(frozen=True)
class Reconstruction:
    """One face through the VAE: the reconstruction as a picture, and how close it is to the
    face as the VAE was given it (PSNR in dB, SSIM up to 1). `path` is None for a picture in
    memory; for a file that could not be read, `error` says why and the rest is None."""

    path: Path | None
    image: Image.Image | None = None
    psnr: float | None = None
    ssim: float | None = None
    error: str | None = None
