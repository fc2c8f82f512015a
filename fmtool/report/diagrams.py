"""Model diagrams drawn with matplotlib (the study's Figures 2 and 8): one box per unit of
`architecture.trace`, top to bottom in forward order, units of one level (branches) side by
side, arrows for the data flow, each box with its layers and its output shape. No Graphviz or
other system dependency.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from fmtool.engine.mpl import FancyArrowPatch, FancyBboxPatch, plt
from fmtool.metrics.plots import save_figure
from fmtool.report.architecture import Unit

COLOURS = {"input": "#d9f0d3", "conv": "#c6dbef", "linear": "#fdd0a2", "pool": "#e0e0e0",
           "dropout": "#f7f7f7", "op": "#ffffff"}
BOX_WIDTH = 3.3  # inches
BOX_HEIGHT = 0.5
ROW = 0.78  # inches from one level to the next
COLUMN = 3.6


def shape_text(shape: Sequence[int]) -> str:
    return "×".join(map(str, shape))


def _label(unit: Unit) -> tuple[str, str]:
    """(first line: name and layers, second line: output shape) of a box."""
    head = f"{unit.name}: {unit.parts[0]}" if unit.parts else unit.name
    rest = " + ".join(unit.parts[1:])
    if unit.kind == "input":
        return head, shape_text(unit.shape)
    line2 = f"{rest}  →  {shape_text(unit.shape)}" if rest else f"→  {shape_text(unit.shape)}"
    return head, line2


def draw(units: Sequence[Unit], title: str, path: Path) -> Path:
    """Writes the diagram of `units` to `path` (format from its suffix)."""
    levels = max(u.level for u in units) + 1
    width = max(sum(1 for u in units if u.level == level) for level in range(levels))
    fig = plt.figure(figsize=(COLUMN * width + 0.4, ROW * levels + 0.8))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(-COLUMN * width / 2 - 0.2, COLUMN * width / 2 + 0.2)
    ax.set_ylim(-ROW * levels, 0.6)
    ax.set_axis_off()
    centres: list[tuple[float, float]] = []
    for unit in units:
        row = [u for u in units if u.level == unit.level]
        x = (row.index(unit) - (len(row) - 1) / 2) * COLUMN
        centres.append((x, -ROW * unit.level - BOX_HEIGHT / 2))
    for unit, (x, y) in zip(units, centres):
        ax.add_patch(FancyBboxPatch((x - BOX_WIDTH / 2, y - BOX_HEIGHT / 2), BOX_WIDTH,
                                    BOX_HEIGHT, boxstyle="round,pad=0.02,rounding_size=0.08",
                                    facecolor=COLOURS.get(unit.kind, "#ffffff"),
                                    edgecolor="#555555", linewidth=0.8,
                                    linestyle="--" if unit.kind == "op" else "-"))
        head, detail = _label(unit)
        ax.text(x, y + 0.09, head, ha="center", va="center", fontsize=8.5, weight="bold")
        ax.text(x, y - 0.12, detail, ha="center", va="center", fontsize=7.5, color="#333333")
        for source in unit.inputs:
            sx, sy = centres[source]
            ax.add_patch(FancyArrowPatch((sx, sy - BOX_HEIGHT / 2), (x, y + BOX_HEIGHT / 2),
                                         arrowstyle="-|>", mutation_scale=9, linewidth=0.8,
                                         color="#444444", shrinkA=1, shrinkB=1))
    ax.text(0, 0.35, title, ha="center", va="center", fontsize=10, weight="bold")
    return save_figure(fig, path, 150)
