"""Figures of 2-D projections: one panel per layer side by side (the report's Figures 5 and 6;
more than four panels wrap onto rows of four), or the images themselves drawn at their
coordinates (Figure 7).

Every class keeps one colour (tab10) in every panel, named in one legend beside the panels.
Points are drawn in the sample's shuffled order, so no class is always on top. Thumbnails are
pasted into one raster per panel (fast for 10,000 images, unlike one matplotlib artist each)
and tinted with their class colour: an item's brightness becomes the opacity of that colour.
matplotlib runs headless (Agg); the file name's suffix picks the format.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from fmtool.cnn.projection import METHOD_TITLES, ProjectedSample, Projection, write_csv
from fmtool.engine.io import all_or_nothing
from fmtool.engine.mpl import Line2D, plt
from fmtool.engine.runs import figures_home
from fmtool.errors import Option, UserError
from fmtool.metrics.plots import save_figure
from fmtool.models.cnn import LAYER_NAMES

FORMATS = (".png", ".svg", ".pdf")
THUMB = 28  # pixels per thumbnail (the images' own size)
# White around the outermost thumbnails, in pixels: without it they touch the panel's frame and
# read as cut off.
THUMB_MARGIN = THUMB // 2
MAX_COLUMNS = 4  # more panels than this wrap onto further rows (e.g. --layer all: 3 rows)


def check_format(path: Path) -> Path:
    if path.suffix.lower() not in FORMATS:
        raise UserError("{} {}: the figure's name must end in {} (the CSV is written beside it)",
                        Option("save"), path, ", ".join(FORMATS))
    return path


def class_colours(count: int) -> np.ndarray:
    """RGB [count, 3]: tab10 for up to 10 classes, tab20 beyond."""
    cmap = plt.get_cmap("tab10" if count <= 10 else "tab20")
    return np.array([cmap(i % cmap.N)[:3] for i in range(count)])


def _title(item: Projection, method: str) -> str:
    scores = []
    if item.knn_accuracy is not None:
        scores.append(f"5-NN acc {item.knn_accuracy:.2f}")
    if item.silhouette is not None:
        scores.append(f"silhouette {item.silhouette:.2f}")
    return f"{item.layer} ({METHOD_TITLES[method]}, {item.features:,} features)\n" + ", ".join(scores)


def thumbnail_canvas(coords: np.ndarray, images: np.ndarray, colours: np.ndarray,
                     side: int) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """An RGB [side, side, 3] picture with each uint8 [28,28] image pasted, tinted, where its
    point lies, THUMB_MARGIN white pixels around them all, and the picture's extent in data
    coordinates (for imshow)."""
    low, high = coords.min(0), coords.max(0)
    span = np.where(high > low, high - low, 1.0)
    room = side - THUMB - 2 * THUMB_MARGIN
    cols = THUMB_MARGIN + np.rint((coords[:, 0] - low[0]) / span[0] * room).astype(int)
    rows = THUMB_MARGIN + np.rint((high[1] - coords[:, 1]) / span[1] * room).astype(int)
    canvas = np.ones((side, side, 3))
    alpha = images.astype(np.float64)[..., None] / 255.0
    for i in range(len(coords)):
        patch = canvas[rows[i]:rows[i] + THUMB, cols[i]:cols[i] + THUMB]
        patch *= 1.0 - alpha[i]
        patch += alpha[i] * colours[i]
    half = (THUMB / 2 + THUMB_MARGIN) * span / room
    extent = (low[0] - half[0], high[0] + half[0], low[1] - half[1], high[1] + half[1])
    return canvas, extent


def draw(projections: Sequence[Projection], labels: np.ndarray, class_names: Sequence[str],
         method: str, path: Path, images: np.ndarray | None = None) -> Path:
    """Writes one panel per projection; with `images`, thumbnails instead of dots."""
    colours = class_colours(len(class_names))
    point_colours = colours[labels]
    n = len(labels)
    panel = 8.0 if images is not None else 5.0
    cols = min(len(projections), MAX_COLUMNS)
    rows = -(-len(projections) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(panel * cols, panel * rows), squeeze=False)
    for ax in axes.flat[len(projections):]:
        ax.set_axis_off()
    for ax, item in zip(axes.flat, projections):
        if images is not None:
            side = int(np.clip(THUMB * np.sqrt(n) * 1.6, 600, 2400))
            canvas, extent = thumbnail_canvas(item.coords, images, point_colours, side)
            ax.imshow(canvas, extent=extent, aspect="auto", interpolation="antialiased")
        else:
            ax.scatter(item.coords[:, 0], item.coords[:, 1], c=point_colours,
                       s=float(np.clip(4000 / max(n, 1), 2, 25)), linewidths=0, alpha=0.85)
        ax.set_title(_title(item, method), fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        if method == "pca":
            ax.set_xlabel("PC1")
            ax.set_ylabel("PC2")
    handles = [Line2D([], [], marker="o", linestyle="", color=colour, label=name)
               for colour, name in zip(colours, class_names)]
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.tight_layout()
    return save_figure(fig, path, 150 if images is not None else 120,
                       "choose another {}", Option("save"))


def default_figure(checkpoint: Path, method: str, layers: Sequence[str],
                   thumbnails: bool) -> tuple[Path, bool]:
    """Where a projection's figure goes when no place is named: the checkpoint's run folder (a
    bundled model's: fmtool's data folder, see `runs.figures_home`), as
    projection-<method>-<layers>[-thumbnails].png; and whether that folder is fmtool's own (its
    files are then rewritten without asking)."""
    tag = "all" if len(layers) == len(LAYER_NAMES) else "+".join(layers)
    home, owned = figures_home(checkpoint)
    return home / f"projection-{method}-{tag}{'-thumbnails' if thumbnails else ''}.png", owned


def save_projection(sample: ProjectedSample, class_names: Sequence[str], method: str, out: Path,
                    thumbnails: bool = False) -> tuple[Path, Path]:
    """The figure at `out` (thumbnails: the images drawn at their points) and the CSV of the
    points beside it; both appear together or not at all."""
    check_format(out)
    with all_or_nothing(out.parent, "choose another {}", Option("save")):
        figure = draw(sample.layers, sample.labels, class_names, method, out,
                      sample.images if thumbnails else None)
        table = write_csv(out.with_suffix(".csv"), sample.layers, sample.indices, sample.labels,
                          class_names)
    return figure, table
