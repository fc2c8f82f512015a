"""2-D views of a layer's activations (PCA or t-SNE) and a measure of how well they separate classes.

The report shows t-SNE and PCA pictures and says the classes separate better towards the output;
the scores here make that claim a number for each layer:
- k-NN accuracy: each 2-D point is classified by the vote of its 5 nearest other points
  (leave-one-out; a tie goes to the class of the nearer neighbour). 1.0 = every point sits among
  its own class; about 1/classes = no structure.
- silhouette: mean over points of (b - a) / max(a, b), a = mean distance to its own class,
  b = to the nearest other class (scikit-learn). From -1 to 1; higher = tighter, further apart.
Choices: features are used as the layer gives them (PCA centres them; nothing is standardised).
t-SNE first reduces layers wider than 50 features to 50 with PCA (scikit-learn's advice; it also
makes 10,000 points x 32,768 features practical), then runs Barnes-Hut t-SNE with perplexity 30
(less for tiny samples), PCA initialisation and the automatic learning rate, seeded.
"""

from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from fmtool.choices import ProjectionMethod
from fmtool.cnn.config import CNNConfig
from fmtool.engine.feedback import SILENT, Feedback
from fmtool.engine.io import atomic_write
from fmtool.errors import Option, UserError
from fmtool.metrics import float32_value

METHOD_TITLES = {"tsne": "t-SNE", "pca": "PCA"}
TSNE_PCA_DIMS = 50
TSNE_PERPLEXITY = 30.0
KNN = 5


@dataclass
class Projection:
    """One layer's 2-D points and scores."""

    layer: str
    features: int
    coords: np.ndarray  # float [N, 2]
    knn_accuracy: float | None
    silhouette: float | None
    explained_variance: float | None  # PCA only: share of the variance the two axes keep
    seconds: float

    def scores(self) -> dict[str, float | int | str | None]:
        return {"layer": self.layer, "features": self.features, "knn_accuracy": self.knn_accuracy,
                "silhouette": self.silhouette, "explained_variance": self.explained_variance,
                "seconds": round(self.seconds, 3)}


def check_method(method: str) -> str:
    return ProjectionMethod.parse(method, "method").value


def project(features: np.ndarray, method: str, seed: int) -> tuple[np.ndarray, float | None]:
    """[N, D] features -> ([N, 2] coordinates, explained variance share for PCA else None)."""
    from sklearn.decomposition import PCA

    x = np.asarray(features, dtype=np.float32)
    n, d = x.shape
    if n < 3 or d < 2:
        raise UserError("need at least 3 images and 2 features to project, got {} x {}; raise {}",
                        n, d, Option("per_class"))
    if check_method(method) == "pca":
        pca = PCA(n_components=2, random_state=seed)
        coords = pca.fit_transform(x)
        share = float32_value(np.nan_to_num(pca.explained_variance_ratio_.sum()))
        return coords.astype(np.float32), share
    from sklearn.manifold import TSNE

    if d > TSNE_PCA_DIMS:
        x = PCA(n_components=min(TSNE_PCA_DIMS, n), random_state=seed).fit_transform(x)
    tsne = TSNE(n_components=2, perplexity=min(TSNE_PERPLEXITY, (n - 1) / 3), init="pca",
                learning_rate="auto", random_state=seed)
    return tsne.fit_transform(x).astype(np.float32), None


def knn_accuracy(coords: np.ndarray, labels: np.ndarray, k: int = KNN) -> float | None:
    """Leave-one-out k-nearest-neighbour accuracy of the points; None when some class has too
    few points to fill most of a point's k neighbours (fewer than k // 2 + 2): with one point a
    class, or two (`project --per-class 2`: a neighbouring pair of another class outvotes the
    one own-class neighbour), even classes far apart would score 0."""
    from sklearn.neighbors import NearestNeighbors

    n = len(coords)
    k = min(k, n - 1)
    if n < 2 or np.unique(labels, return_counts=True)[1].min() < k // 2 + 2:
        return None
    _, neighbours = NearestNeighbors(n_neighbors=k).fit(coords).kneighbors()  # excludes self
    votes = np.zeros((n, int(labels.max()) + 1))
    rank_weight = 1.0 + 1e-6 * np.arange(k, 0, -1)  # nearer neighbours win ties
    np.add.at(votes, (np.repeat(np.arange(n), k), labels[neighbours].ravel()),
              np.tile(rank_weight, n))
    return float((votes.argmax(1) == labels).mean())


def silhouette(coords: np.ndarray, labels: np.ndarray) -> float | None:
    """Mean silhouette of the points by class (None when it is undefined: one class only)."""
    from sklearn.metrics import silhouette_score

    classes = len(np.unique(labels))
    if not 2 <= classes <= len(coords) - 1:
        return None
    return float32_value(silhouette_score(coords, labels))  # of float32 points


def analyse_layer(layer: str, features: np.ndarray, labels: np.ndarray, method: str,
                  seed: int) -> Projection:
    """Projects one layer's features and scores how well the classes separate in 2-D."""
    start = time.perf_counter()
    coords, share = project(features, method, seed)
    return Projection(layer=layer, features=int(features.shape[1]), coords=coords,
                      knn_accuracy=knn_accuracy(coords, labels),
                      silhouette=silhouette(coords, labels), explained_variance=share,
                      seconds=time.perf_counter() - start)


def write_csv(path: Path, projections: Sequence[Projection], indices: np.ndarray,
              labels: np.ndarray, class_names: Sequence[str]) -> Path:
    """One row per point and layer: layer, index (in the test set), label, class, x, y."""
    table = io.StringIO(newline="")
    writer = csv.writer(table)
    writer.writerow(["layer", "index", "label", "class", "x", "y"])
    for item in projections:
        for index, label, (x, y) in zip(indices.tolist(), labels.tolist(), item.coords.tolist()):
            writer.writerow([item.layer, index, label, class_names[label], f"{x:.6g}", f"{y:.6g}"])
    with atomic_write(path, "", "choose another {}", Option("save")) as sink:
        sink.write(table.getvalue().encode("utf-8", "backslashreplace"))  # odd class names
    return path


@dataclass
class ProjectedSample:
    """The test images a projection drew (`per_class` of each class, seeded) and each layer's
    2-D map of them, in the order the layers were asked for."""

    indices: np.ndarray  # positions in the test set
    labels: np.ndarray
    images: np.ndarray  # uint8 [N, 28, 28]
    layers: list[Projection]


def project_test_images(model: Any, config: CNNConfig, layers: list[str], method: str,
                        per_class: int, seed: int, device: Any, data_dir: Path | None,
                        feedback: Feedback = SILENT) -> ProjectedSample:
    """Samples `per_class` test images of every class with `seed`, captures the layers,
    projects each to 2-D with `method` and scores how well the classes separate there."""
    from fmtool.cnn.activations import sample_per_class
    from fmtool.data.fashion import load_fashion_mnist

    method = check_method(method)
    names = config.class_names
    data = load_fashion_mnist(data_dir)
    _check_per_class(per_class, data.test_labels, names)
    indices = sample_per_class(data.test_labels, per_class, seed, len(names))
    images, labels = data.test_images[indices], data.test_labels[indices]
    projections = project_layers(model, config, images, labels, layers, method, seed, device,
                                 feedback)
    return ProjectedSample(indices.numpy(), labels.numpy(), images.numpy(), projections)


def largest_class(labels: Any, classes: int) -> int:
    """How many images the largest of the first `classes` classes holds."""
    import torch

    return max(torch.bincount(labels, minlength=classes)[:classes].tolist(), default=0)


def _check_per_class(per_class: int, labels: Any, names: Sequence[str]) -> None:
    """`per_class` must be a number some class of the test set can give, else it would be
    reported but never used (a class with fewer images gives all it has: see `points`)."""
    most = largest_class(labels, len(names))
    if per_class > most:
        raise UserError("{} must be at most {} for this test set (its largest class has {} "
                        "images), got {}", Option("per_class"), most, most, per_class)


def project_layers(model: Any, config: CNNConfig, images: Any, labels: Any,
                   layers: list[str], method: str, seed: int, device: Any,
                   feedback: Feedback = SILENT) -> list[Projection]:
    """Captures the layers in memory-sized groups (one forward pass each) and projects each."""
    from math import prod

    from fmtool.cnn.activations import capture, layer_groups, layer_shapes

    size = config.image_size
    features = {name: prod(shape) for name, shape in layer_shapes(model, size).items()}
    np_labels: np.ndarray = labels.numpy()
    done: dict[str, Projection] = {}
    with feedback.progress(transient=True) as bar:
        for group in layer_groups(layers, features, len(images)):
            task = bar.add_task(f"activations of {', '.join(group)}", total=len(images))
            captured = capture(model, images, group, size, device,
                               on_batch=lambda n, task=task: bar.advance(task, n))
            for name in group:
                bar.update(task, description=f"{METHOD_TITLES[method]} of {name}",
                           status=f"{len(images)} x {features[name]:,}")
                done[name] = analyse_layer(name, captured.pop(name).numpy(), np_labels, method, seed)
            bar.remove_task(task)
    return [done[name] for name in layers]
