"""One study while `build_study` writes it: the files it may write, by role, its progress bar,
and the figures and numbers found so far. The figure modules add to it; `study` drives them."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator

import torch

from fmtool.engine.feedback import Feedback, Within
from fmtool.report import tables
from fmtool.report.document import Item

STEPS = 9  # what the progress bar counts


def output_names(fmt: str) -> dict[str, str]:
    """Every file the study may write, by role."""
    return {
        "samples": f"figure01_samples.{fmt}", "cnn": f"figure02_cnn.{fmt}",
        "loss_curve": f"figure03_loss.{fmt}", "accuracy_curve": f"figure04_accuracy.{fmt}",
        "confusion_matrix": f"confusion_matrix.{fmt}",
        "pca": f"figure05_pca.{fmt}", "pca_csv": "figure05_pca.csv",
        "tsne": f"figure06_tsne.{fmt}", "tsne_csv": "figure06_tsne.csv",
        "thumbnails": f"figure07_tsne_thumbnails.{fmt}", "table2": "table2.csv",
        "vae": f"figure08_vae.{fmt}", "reconstructions": "figure09_reconstructions.png",
        "pairs": "figure10_pairs.png", "faces": "figure10_faces.txt",
        "male_female": "figure11_male_female.png", "young_old": "figure12_young_old.png",
        "html": "index.html", "markdown": "report.md",
    }


class Study:
    """One study while it is built: where its files go, its progress, what it found so far."""

    def __init__(self, out: Path, fmt: str, seed: int, device: torch.device,
                 feedback: Feedback) -> None:
        self.out = out
        self.names = output_names(fmt)
        self.seed = seed
        self.device = device
        self.feedback = feedback
        self.inner: Feedback = feedback  # for work inside a step: its bars join the study's
        self.items: list[Item] = []
        self.measured: dict[str, Any] = {}
        self._bars: Any = None
        self._task: Any = None
        self._steps = 0

    @contextlib.contextmanager
    def progress(self) -> Iterator[None]:
        with self.feedback.progress() as bars:
            self._bars, self._task = bars, bars.add_task("report", total=STEPS, status="")
            self.inner = Within(self.feedback, bars)
            yield
            bars.update(self._task, completed=STEPS, status="done")

    def step(self, text: str) -> None:
        """The next step begins: the progress bar counts the last one done and says this one."""
        self._bars.update(self._task, completed=self._steps, status=text)
        self._steps += 1

    def path(self, role: str) -> Path:
        return self.out / self.names[role]

    def figure(self, label: str, title: str, caption: str, roles: list[str],
               missing: str = "", table: tables.Table | None = None) -> None:
        files = [self.names[role] for role in roles]
        self.items.append(Item(label, title, caption, files, table, missing))
