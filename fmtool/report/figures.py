"""The study's Figure 1: Fashion-MNIST images, a row per class, named on the left.

The images are pasted into one picture and drawn once (a hundred small axes would take seconds),
light on dark as the data set stores them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from fmtool.engine.mpl import plt
from fmtool.metrics.plots import save_figure

GAP = 2  # pixels between images


def sample_rows(labels: np.ndarray, indices: np.ndarray, classes: int) -> list[list[int]]:
    """`indices` (a sample of images, as `sample_per_class` draws it) grouped by class, in the
    order drawn: row c holds the indices of class c."""
    return [[int(i) for i in indices if labels[i] == label] for label in range(classes)]


def sample_grid(images: np.ndarray, rows: Sequence[Sequence[int]], class_names: Sequence[str],
                title: str, path: Path) -> Path:
    """uint8 [N, 28, 28] `images`; row r shows images[rows[r]] (a short row stays black)."""
    side = images.shape[-1]
    columns = max((len(row) for row in rows), default=0)
    step = side + GAP
    canvas = np.full((len(rows) * step - GAP, max(1, columns * step - GAP)), 255, np.uint8)
    for r, row in enumerate(rows):
        canvas[r * step:r * step + side, :columns * step - GAP] = 0
        for c, index in enumerate(row):
            canvas[r * step:r * step + side, c * step:c * step + side] = images[index]
    fig, ax = plt.subplots(figsize=(0.45 * columns + 1.6, 0.45 * len(rows) + 0.6))
    ax.imshow(canvas, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.set_yticks([r * step + side / 2 for r in range(len(rows))], class_names)
    ax.set_xticks([])
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title(title, fontsize=10)
    return save_figure(fig, path, 150)
