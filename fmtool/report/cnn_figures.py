"""The CNN's half of the study: Figures 1-7 and Table 2, and what they measure.

Choices:
- Figure 1 shows training images, up to 10 a class drawn with the seed.
- Figures 3 and 4 need the run's history: the metrics.jsonl beside the checkpoint, or the
  history a bundled model carries; without either the documents say so and give the epoch the
  checkpoint records.
- Figures 5-7 show the report's sample, 50 test images per class (fewer when a test set holds
  fewer), as conv9, linear1 and output see them: Figure 5 is PCA, Figure 6 t-SNE and Figure 7
  Figure 6's points drawn as thumbnails. The sample and the scores are those of `fmtool project
  --per-class 50 --seed S`; accuracy and per-class accuracy those of `fmtool eval`.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import torch

from fmtool.cnn.activations import sample_per_class
from fmtool.cnn.config import CNNConfig
from fmtool.cnn.evaluate import evaluate_model, write_figures
from fmtool.cnn.projection import largest_class, project_layers, write_csv
from fmtool.cnn.projection_plots import draw as draw_projection
from fmtool.data.fashion import FashionMNIST, load_fashion_mnist
from fmtool.engine.bundled import is_bundled
from fmtool.engine.device import choose_precision
from fmtool.engine.io import write_text
from fmtool.engine.runs import BEST_CHECKPOINT, LAST_CHECKPOINT, checkpoint_history
from fmtool.report import architecture, diagrams, tables
from fmtool.report.figures import sample_grid, sample_rows
from fmtool.report.study_folder import Study

SAMPLES_PER_CLASS = 10  # Figure 1
PER_CLASS = 50  # Figures 5-7, as the report
LAYERS = ["conv9", "linear1", "output"]
METHODS = ("pca", "tsne")  # Figures 5 and 6


def cnn_figures(study: Study, model: Any, config: CNNConfig, meta: dict[str, Any], path: Path,
                data_dir: Path | None) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """Figures 1-7 and Table 2; returns the evaluation and the separation scores."""
    study.step("Figure 1: Fashion-MNIST")
    data = load_fashion_mnist(data_dir)
    _samples(study, data, list(config.class_names))
    study.step("Figure 2: the CNN's structure")
    _structure(study, model, config)
    study.step(f"Figures 3, 4, Table 2: test accuracy on {len(data.test_labels):,} images")
    evaluation = _accuracy(study, model, config, meta, path, data_dir)
    study.step("Figures 5-7: PCA and t-SNE of conv9, linear1, output")
    projection = _projections(study, model, config, data)
    study.figure("fmtool's addition", "Confusion matrix", "Rows: the true class of each test "
                 "image; columns: the class predicted. The report has no such figure.",
                 ["confusion_matrix"])
    study.measured["cnn"] = {
        "checkpoint": str(path), "epoch": evaluation["epoch"], "images": evaluation["images"],
        "accuracy": evaluation["accuracy"], "correct": tables.correct_count(evaluation),
        "loss": evaluation["loss"], "per_class_accuracy": evaluation["per_class_accuracy"],
        "projection": projection}
    return evaluation, {method: projection[method] for method in METHODS}


def _samples(study: Study, data: FashionMNIST, names: list[str]) -> None:
    picked = sample_per_class(data.train_labels, SAMPLES_PER_CLASS, study.seed, len(names))
    rows = sample_rows(data.train_labels.numpy(), picked.numpy(), len(names))
    sample_grid(data.train_images.numpy(), rows, names,
                f"Fashion-MNIST: {SAMPLES_PER_CLASS} training images per class",
                study.path("samples"))
    study.figure("Figure 1", "Fashion-MNIST samples",
                 f"Up to {SAMPLES_PER_CLASS} training images of each of the {len(names)} "
                 f"classes, drawn at random (seed {study.seed}), a row per class.", ["samples"])


def _structure(study: Study, model: Any, config: CNNConfig) -> None:
    size = config.image_size
    units = architecture.trace(model, torch.zeros(1, 1, size, size, device=study.device))
    variant = getattr(model, "variant", None)
    what = (f"{type(model).__name__}{f' ({variant} variant)' if variant else ''}, width "
            f"{config.width:g}, "
            f"{architecture.parameter_count(model):,} parameters")
    diagrams.draw(units, what, study.path("cnn"))
    study.figure("Figure 2", "The CNN", f"The CNN the checkpoint holds ({what}), traced from "
                 "its forward pass: each box is a layer with its kernel, channels and the shape "
                 "of its output for one image; boxes side by side are the branches of a block, "
                 f"joined again where they meet. Fashion-MNIST's 28×28 images are resized to "
                 f"{size}×{size} on the way in.", ["cnn"])


def _accuracy(study: Study, model: Any, config: CNNConfig, meta: dict[str, Any], path: Path,
              data_dir: Path | None) -> dict[str, Any]:
    """What `fmtool eval` measures, its figures (Figures 3 and 4, the confusion matrix) and
    Table 2."""
    evaluation = {"checkpoint": str(path), "epoch": meta.get("epoch"),
                  **evaluate_model(model, config, study.device, data_dir, None,
                                   choose_precision("fp32", study.device))}
    history = checkpoint_history(path, meta)
    roles = (["loss_curve", "accuracy_curve"] if history else []) + ["confusion_matrix"]
    write_figures(evaluation, history, {role: study.path(role) for role in roles})
    _curves(study, meta, path, history)
    recipe = (meta.get("recipe") or {}).get("name")
    comparison = tables.table2(evaluation, checkpoint_label(path),
                               recipe if isinstance(recipe, str) else None)
    text = io.StringIO(newline="")
    csv.writer(text).writerows([comparison.header, *comparison.rows])
    write_text(study.path("table2"), text.getvalue())
    study.figure("Table 2", "Test accuracy beside published models", "The report's rows as it "
                 "prints them, with the checkpoint fmtool measured added as the last row.",
                 ["table2"], table=comparison)
    return evaluation


def checkpoint_label(path: Path) -> str:
    """A checkpoint as a table names it: "bundled" for fmtool's own model, a run's folder for
    its best.pt or last.pt (the run's name), else the file's name."""
    if is_bundled(path):
        return "bundled"
    return path.parent.name if path.name in (BEST_CHECKPOINT, LAST_CHECKPOINT) else path.name


def _projections(study: Study, model: Any, config: CNNConfig,
                 data: FashionMNIST) -> dict[str, Any]:
    """Figures 5-7 and their separation scores, as `fmtool project` gives them."""
    names = list(config.class_names)
    per_class = min(PER_CLASS, largest_class(data.test_labels, len(names)))
    indices = sample_per_class(data.test_labels, per_class, study.seed, len(names))
    images, labels = data.test_images[indices], data.test_labels[indices]
    projections = {method: project_layers(model, config, images, labels, LAYERS, method,
                                          study.seed, study.device, study.inner)
                   for method in METHODS}
    np_labels = labels.numpy()
    for method in METHODS:
        draw_projection(projections[method], np_labels, names, method, study.path(method))
        write_csv(study.path(f"{method}_csv"), projections[method], indices.numpy(), np_labels,
                  names)
    draw_projection(projections["tsne"], np_labels, names, "tsne", study.path("thumbnails"),
                    images.numpy())
    sample = (f"{len(labels)} test images ({per_class} per class, drawn with seed {study.seed}) "
              f"as {', '.join(LAYERS)} see them")
    study.figure("Figure 5", "PCA of three layers", f"PCA of {sample}; a colour per class. "
                 "Each panel's title gives its separation scores (see Numbers); the CSV holds "
                 "the points.", ["pca", "pca_csv"])
    study.figure("Figure 6", "t-SNE of three layers", f"t-SNE (after PCA to 50 dimensions for "
                 f"wide layers) of {sample}.", ["tsne", "tsne_csv"])
    study.figure("Figure 7", "t-SNE with the images", "Figure 6's maps with each image drawn "
                 "at its point, tinted with its class's colour.", ["thumbnails"])
    return {"points": len(labels), "per_class": per_class,
            **{method: [item.scores() for item in found] for method, found in projections.items()}}


def _curves(study: Study, meta: dict[str, Any], path: Path,
            history: list[dict[str, Any]]) -> None:
    """Figures 3 and 4 as items: drawn from the run's history, or why not."""
    missing = ""
    if not history:
        last = meta.get("metrics") or {}
        shown = ", ".join(f"{key} {last[key]:.4f}" for key in
                          ("train_loss", "test_loss", "train_acc", "test_acc")
                          if isinstance(last.get(key), (int, float)))
        missing = (f"there is no metrics.jsonl beside {path} and the checkpoint carries no "
                   "history" + (f"; the checkpoint records its epoch "
                                             f"{meta.get('epoch')}: {shown}" if shown else ""))
    epochs = f" over {len(history)} epochs" if history else ""
    study.figure("Figure 3", "Loss per epoch", f"Cross-entropy loss on the training and test "
                 f"images{epochs}, from the run's history.",
                 ["loss_curve"] if history else [], missing)
    study.figure("Figure 4", "Accuracy per epoch", f"Accuracy on the training and test "
                 f"images{epochs}, from the run's history.",
                 ["accuracy_curve"] if history else [], missing)
