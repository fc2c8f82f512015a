"""`fmtool reconstruct DIR`: every face in a folder through the VAE, with figures and a CSV.

Writes under the output folder:
- images/<path relative to DIR, as .png>: each reconstruction at the model's size. Names are
  unique, also for file systems that ignore case: two inputs that would share one (a.jpg and
  a.png) keep their extension (a.jpg.png, a.png.png), and a name still taken gets ~2, ~3, ...
  before .png;
- side_by_side_NNN.png: the report's Figure 9, 64 originals beside their reconstructions;
- alternating_NNN.png: the report's Figure 10, original/reconstruction pairs in alternating columns;
- metrics.csv: one row per image (file, output, bce, mse, psnr, ssim), UTF-8; a byte of a file
  name that is not UTF-8 is written as \\xHH.

Originals are preprocessed exactly as in training (centre crop, resize), so the figures and the
numbers compare like with like. BCE and MSE are means over pixels and channels, so models of
different sizes compare; the summary (means over images) is returned and printed rather than
appended to the CSV, which stays one row per image for spreadsheets and pandas.
Reconstruction is deterministic (decode mu) unless `sample` is set (decode mu + sigma * eps,
with noise from `seed`). Nothing that exists is overwritten unless `force` is set, and that is
checked before anything is written; the outputs appear together when all are done, or not at
all (a full disk or Ctrl-C part-way leaves none), and none is written through a symbolic link
inside the output folder. The output folder may be the input folder or inside it: only
reconstruct's own outputs there (images/ and the grids) are left out of the inputs.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch
import torch.nn.functional as F

from fmtool.data.faces import decode_faces, to_unit
from fmtool.data.inputs import folder_images
from fmtool.engine.feedback import SILENT, Feedback
from fmtool.engine.interrupt import stop_at_boundaries
from fmtool.engine.io import all_or_nothing, atomic_write, check_outputs
from fmtool.errors import Option, UserError
from fmtool.metrics import float32_value
from fmtool.metrics import image as image_metrics
from fmtool.models.vae import FaceVAE
from fmtool.vae.config import VAEConfig
from fmtool.vae.figures import alternating, save_grid, save_png, side_by_side
from fmtool.vae.inference import reconstruct

GRID_PAIRS = 64
CSV_NAME = "metrics.csv"
IMAGES_FOLDER = "images"
METRICS = ("bce", "mse", "psnr", "ssim")
COLUMNS = ("file", "output", *METRICS)
_GRID = re.compile(r"^(side_by_side|alternating)_\d{3,}\.png$")


@dataclass
class _Batch:
    files: list[Path]
    images: torch.Tensor  # uint8 [n, 3, S, S]


def _is_output(path: Path, out: Path) -> bool:
    """Whether `path` is one of reconstruct's own outputs in `out`: under images/, or a grid."""
    try:
        parts = path.resolve().relative_to(out.resolve()).parts
    except (OSError, ValueError):
        return False
    return (len(parts) > 1 and parts[0] == IMAGES_FOLDER) or (
        len(parts) == 1 and _GRID.match(parts[0]) is not None)


def input_files(folder: Path, recursive: bool, out: Path) -> list[Path]:
    """Image files in `folder` (sub-folders with `recursive`), leaving out reconstruct's own
    outputs in `out` (which may be `folder` itself, or inside it)."""
    return folder_images(folder, recursive, lambda f: _is_output(f, out),
                         f"earlier outputs of reconstruct in {out} (its images/ and grids), "
                         "which are not read as inputs")


def _key(name: Path) -> str:
    """How a file system that ignores case (macOS, Windows) compares two names."""
    return name.as_posix().casefold()


def output_names(files: Sequence[Path], folder: Path) -> dict[Path, Path]:
    """images/<relative path>.png, one distinct name per input (see the module docstring)."""
    relative = {f: f.relative_to(folder) for f in files}
    preferred = {f: r.with_suffix(".png") for f, r in relative.items()}
    clashes = Counter(_key(n) for n in preferred.values())
    folders = {_key(p) for r in relative.values() for p in r.parents}  # never renamed
    taken: set[str] = set()
    names: dict[Path, Path] = {}
    for file in files:
        name = preferred[file]
        if clashes[_key(name)] > 1:
            name = relative[file].with_name(file.name + ".png")
        base, number = name, 2
        while _key(name) in taken or _key(name) in folders:
            name = base.with_name(f"{base.name[:-len('.png')]}~{number}.png")
            number += 1
        taken.add(_key(name))
        names[file] = Path(IMAGES_FOLDER) / name
    return names


def _csv_name(path: Path) -> str:
    """A relative path for metrics.csv: itself, but each byte that is not UTF-8 as \\xHH."""
    return os.fsencode(path.as_posix()).decode("utf-8", "backslashreplace")


def _grid_names(count: int) -> list[tuple[str, str]]:
    return [(f"side_by_side_{i:03d}.png", f"alternating_{i:03d}.png")
            for i in range(1, math.ceil(count / GRID_PAIRS) + 1)]


def _first_failure(failures: Sequence[tuple[Path, str]]) -> str:
    path, reason = failures[0]
    return f"{path.name}: {reason}"


def _readable_batches(files: Sequence[Path], size: int, crop: Sequence[int],
                      failures: list[tuple[Path, str]],
                      check: Callable[[], None] = lambda: None) -> Iterator[_Batch]:
    """Full batches of GRID_PAIRS readable faces (the last may be smaller); failures collected.
    `check` runs after each chunk is decoded (a stop asked for ends the work there)."""
    pending_files: list[Path] = []
    pending: list[torch.Tensor] = []
    for start in range(0, len(files), GRID_PAIRS):
        check()
        chunk = files[start:start + GRID_PAIRS]
        images, ok, failed = decode_faces(chunk, size, crop)
        failures.extend(failed)
        pending_files += [f for f, good in zip(chunk, ok) if good]
        pending.append(images)
        stacked = torch.cat(pending)
        while len(pending_files) >= GRID_PAIRS:
            yield _Batch(pending_files[:GRID_PAIRS], stacked[:GRID_PAIRS])
            pending_files, stacked = pending_files[GRID_PAIRS:], stacked[GRID_PAIRS:]
        pending = [stacked]
    if pending_files:
        yield _Batch(pending_files, torch.cat(pending))


def face_metrics(recons: torch.Tensor, originals: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per image [B]: BCE and MSE (means over pixels and channels), PSNR and SSIM."""
    bce = F.binary_cross_entropy(recons, originals, reduction="none").flatten(1).mean(1)
    return {"bce": bce, "mse": image_metrics.mse(recons, originals),
            "psnr": image_metrics.psnr(recons, originals),
            "ssim": image_metrics.ssim(recons, originals)}


def mean_metrics(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    """The means over images of `face_metrics` rows (NaN when there are none)."""
    return {k: (sum(r[k] for r in rows) / len(rows) if rows else float("nan")) for k in METRICS}


def reconstruct_folder(folder: Path, model: FaceVAE, config: VAEConfig, checkpoint: Path | None,
                       out: Path, device: torch.device, recursive: bool = False,
                       sample: bool = False, seed: int = 0, force: bool = False,
                       feedback: Feedback = SILENT) -> dict[str, Any]:
    """Reconstructs every readable image in `folder` with `model` (read from `checkpoint`, which
    the summary names); returns a summary (see module docstring)."""
    size, crop = config.image_size, config.crop
    files = input_files(folder, recursive, out)
    targets = output_names(files, folder)
    grids = _grid_names(len(files))
    planned = [out / t for t in targets.values()] + [out / CSV_NAME]
    planned += [out / name for pair in grids for name in pair]
    check_outputs(planned, out, force)
    generator = torch.Generator().manual_seed(seed) if sample else None
    rows: list[dict[str, Any]] = []
    failures: list[tuple[Path, str]] = []
    written_grids: list[str] = []
    # All or nothing: the files appear when the block ends, or none does (see engine.io); `out`
    # is held until then, and checked again once held, so a second reconstruct into it refuses.
    # Ctrl-C or SIGTERM stops at the next file or batch, leaving `out` as it was.
    with stop_at_boundaries(feedback) as stop, \
            all_or_nothing(out, "choose another {}", Option("out"),
                           overwrite=force, exclusive=True), \
            feedback.progress(transient=True) as bars:
        check_outputs(planned, out, force)
        bar = bars.add_task("reconstructing", total=len(files), status="")
        for index, batch in enumerate(_readable_batches(files, size, crop, failures, stop.check)):
            originals = to_unit(batch.images)
            recons = reconstruct(model, batch.images, device, sample, generator)
            metrics = face_metrics(recons, originals)
            for i, file in enumerate(batch.files):
                stop.check()  # each file is synced to disk: a batch of them takes a while
                save_png(recons[i], out / targets[file])
                rows.append({"file": _csv_name(file.relative_to(folder)),
                             "output": _csv_name(targets[file]),
                             **{k: float32_value(v[i]) for k, v in metrics.items()}})
            side_name, alt_name = grids[index]
            save_png(side_by_side(originals, recons), out / side_name)
            save_grid(alternating(originals, recons), out / alt_name, columns=16)
            written_grids += [str(out / side_name), str(out / alt_name)]
            bars.update(bar, completed=min(len(files), len(rows) + len(failures)))
            stop.check()
        if not rows:
            raise UserError(f"none of the {len(files)} images in {folder} could be read "
                            f"(first: {_first_failure(failures)}); nothing was written")
        table = io.StringIO(newline="")
        writer = csv.DictWriter(table, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.6f}" if isinstance(v, float) else v)
                             for k, v in row.items()})
        with atomic_write(out / CSV_NAME) as sink:
            sink.write(table.getvalue().encode("utf-8"))
    return {
        "checkpoint": None if checkpoint is None else str(checkpoint), "folder": str(folder), "out": str(out),
        "images": len(rows), "sampled": sample, "mean": mean_metrics(rows),
        "skipped": [{"path": str(p), "error": reason} for p, reason in failures],
        "csv": str(out / CSV_NAME), "grids": written_grids,
    }
