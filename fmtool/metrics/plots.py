"""Figures written into run folders: the report's loss and accuracy curves (Figures 3 and 4)
and a confusion matrix. matplotlib runs headless (Agg) so this works over SSH and in CI."""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any, Sequence

from fmtool.engine.io import DEFAULT_ADVICE, atomic_write
from fmtool.engine.mpl import MaxNLocator, plt


def save_figure(fig: Any, path: Path, dpi: int = 120, advice: str = DEFAULT_ADVICE,
                *values: object) -> Path:
    """Writes a matplotlib figure atomically, in the format its suffix names, and closes it."""
    rendered = io.BytesIO()  # some backends (svg, pdf) need a seekable file
    try:
        with warnings.catch_warnings():
            # A label with a character the font lacks (a control character in a class name) is
            # drawn as a box; matplotlib's warning would print that character raw on stderr.
            warnings.filterwarnings("ignore", message="Glyph .* missing from font")
            fig.savefig(rendered, format=path.suffix.lstrip(".").lower() or "png", dpi=dpi,
                        bbox_inches="tight")
    finally:
        plt.close(fig)
    with atomic_write(path, "", advice, *values) as sink:
        sink.write(rendered.getbuffer())
    return path


def curves(history: Sequence[dict[str, Any]], keys: Sequence[tuple[str, str]], ylabel: str,
           title: str, path: Path) -> Path:
    """One line per (metric key, legend label) over epochs, e.g. train and test loss."""
    fig, ax = plt.subplots(figsize=(6, 4))
    epochs = [r["epoch"] for r in history]
    for key, label in keys:
        # Epochs a recipe did not score (evaluate_last) are left out of that line.
        points = [(r["epoch"], r[key]) for r in history if r.get(key) is not None]
        if points:
            ax.plot(*zip(*points), marker="o" if len(epochs) < 30 else None, label=label)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return save_figure(fig, path)


def confusion(matrix: Any, class_names: Sequence[str], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 6))
    image = ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    peak = float(matrix.max()) if matrix.size else 0.0
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            value = int(matrix[i, j])
            ax.text(j, i, str(value), ha="center", va="center", fontsize=7,
                    color="white" if value > peak / 2 else "black")
    fig.colorbar(image, ax=ax)
    ax.set_title("Confusion matrix (test set)")
    return save_figure(fig, path)
