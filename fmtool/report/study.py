"""`fmtool report`: the study rebuilt from a CNN and a VAE checkpoint into one folder, each
figure and table numbered as in the report, with index.html and report.md around them.

Every number comes from the code the other commands run (`evaluate_checkpoint`, the projection,
`evaluate_vae`, `face_metrics`, `fuse_pair`) on the same samples they draw, so the study says
what `fmtool eval`, `project --per-class 50 --seed S` and `reconstruct` print for the same
checkpoint and data, and PSNR and SSIM what a bundled VAE's model card states. Given the
checkpoints, the data and `seed`, the numbers and pictures are the same on every run. Every
file the study may write is checked before any work (`--force` to overwrite), and they all
appear together at the end, or none does (see `engine.io.all_or_nothing`). Plots and diagrams
take the chosen format; face grids are pictures and stay PNG. What each half draws and the
choices made there: `cnn_figures` (Figures 1-7, Table 2), `vae_figures` (8-12).
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any, Iterator

import torch

from fmtool.cnn.inference import load_classifier
from fmtool.cnn.recipes import PAPER as TABLE1
from fmtool.data.faces import resolve_faces_dir
from fmtool.engine.feedback import SILENT, Feedback, Within
from fmtool.engine.io import all_or_nothing, check_outputs
from fmtool.errors import Option
from fmtool.report import tables
from fmtool.report.cnn_figures import cnn_figures
from fmtool.report.document import Item, write_documents
from fmtool.report.vae_figures import fusion_figures, reconstructions, vae_structure
from fmtool.vae.fuse import read_pairs
from fmtool.vae.inference import load_vae
from fmtool.vae.recipes import PAPER as TABLE3

STEPS = 9  # what the progress bar counts
ADVICE = "free some space or choose another {}"


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


def build_study(cnn_path: Path, vae_path: Path, out: Path, fmt: str, seed: int,
                device: torch.device, data_dir: Path | None = None,
                faces_dir: Path | None = None, pairs: Path | None = None,
                force: bool = False, feedback: Feedback = SILENT) -> dict[str, Any]:
    """Writes the study into `out` (see the module docstring); returns what it measured and the
    files it wrote."""
    start = time.perf_counter()
    planned = [out / name for name in output_names(fmt).values()]
    check_outputs(planned, out, force)
    if pairs is not None:  # a pairs file that cannot be used fails now, not after the CNN's half
        read_pairs(pairs, resolve_faces_dir(faces_dir, feedback, option="faces_dir"))
    cnn, cnn_meta = load_classifier(cnn_path, device)
    vae, vae_meta = load_vae(vae_path, device)
    study = Study(out, fmt, seed, device, feedback)
    # `out` is held from here to the end and checked again once held (see engine.io).
    with all_or_nothing(out, ADVICE, Option("out"), overwrite=force, exclusive=True), \
            study.progress():
        check_outputs(planned, out, force)
        evaluation, scores = cnn_figures(study, cnn, cnn_meta, cnn_path, data_dir)
        vae_structure(study, vae, vae_meta)
        faces = reconstructions(study, vae, vae_meta, vae_path, faces_dir)
        fusion_figures(study, vae, vae_meta, Path(faces["folder"]), pairs)
        study.step("index.html, report.md")
        numbers = [tables.headline(evaluation, faces), tables.per_class(evaluation),
                   tables.separation(scores),
                   tables.recipes("Recipes: the report's Table 1 and this CNN's",
                                  TABLE1.to_dict(), cnn_meta.get("recipe")),
                   tables.recipes("Recipes: the report's Table 3 and this VAE's",
                                  TABLE3.to_dict(), vae_meta.get("recipe"))]
        written = write_documents(study.path("html"), study.path("markdown"),
                                  "The study, regenerated by fmtool",
                                  _intro(cnn_path, vae_path, seed), numbers, study.items)
    files = [out / name for item in study.items for name in item.files] + written
    return {"out": str(out), "format": fmt, "seed": seed, **study.measured,
            "figures": [{"label": item.label, "title": item.title,
                         "files": [str(out / name) for name in item.files],
                         "missing": item.missing} for item in study.items],
            "files": [str(path) for path in files],
            "seconds": round(time.perf_counter() - start, 2)}


def _intro(cnn_path: Path, vae_path: Path, seed: int) -> list[str]:
    return [f"Every figure and table of the report, numbered as there, rebuilt by fmtool from the "
            f"CNN checkpoint {cnn_path} and the VAE checkpoint {vae_path} with seed {seed}, and "
            "the report's own numbers beside those fmtool measured.",
            "Figures that are pictures of faces are PNG; the plots and diagrams take the format "
            "asked for. Files ending in .csv hold the numbers behind a figure."]
