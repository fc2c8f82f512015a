"""`fmtool reconstruct DIR`: every face in a folder through the VAE, with figures and a CSV.

Writes under the output folder:
- images/<path relative to DIR, as .png>: each reconstruction at the model's size;
- side_by_side_NNN.png: the report's Figure 9, 64 originals beside their reconstructions;
- alternating_NNN.png: the report's Figure 10, original/reconstruction pairs in alternating columns;
- metrics.csv: one row per image (file, output, bce, mse, psnr, ssim).

Originals are preprocessed exactly as in training (centre crop, resize), so the figures and the
numbers compare like with like. BCE and MSE are means over pixels and channels, so models of
different sizes compare; the summary (means over images) is returned and printed rather than
appended to the CSV, which stays one row per image for spreadsheets and pandas.
Reconstruction is deterministic (decode mu) unless `sample` is set (decode mu + sigma * eps,
with noise from `seed`). Nothing that exists is overwritten unless `force` is set, and that is
checked before anything is written.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
import torch.nn.functional as F

from fmtool.data.faces import decode_faces, list_images, to_unit
from fmtool.engine.feedback import SILENT, Feedback
from fmtool.engine.io import atomic_write
from fmtool.errors import Option, UserError
from fmtool.metrics import image as image_metrics
from fmtool.vae.figures import alternating, save_grid, save_png, side_by_side
from fmtool.vae.inference import load_vae, reconstruct

GRID_PAIRS = 64
CSV_NAME = "metrics.csv"
IMAGES_FOLDER = "images"
COLUMNS = ("file", "output", "bce", "mse", "psnr", "ssim")


@dataclass
class _Batch:
    files: list[Path]
    images: torch.Tensor  # uint8 [n, 3, S, S]


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def input_files(folder: Path, recursive: bool, out: Path) -> list[Path]:
    """Image files in `folder` (sub-folders with `recursive`), leaving out the output folder."""
    if not folder.is_dir():
        raise UserError(f"{folder} is not a folder; give a folder of face images")
    files = [f for f in list_images(folder, recursive) if not _inside(f, out)]
    if not files:
        hint = "" if recursive else " (add -r to search sub-folders)"
        raise UserError(f"no images found in {folder}{hint}")
    return files


def output_names(files: Sequence[Path], folder: Path) -> dict[Path, Path]:
    """images/<relative path>.png; two inputs that would share a name keep their extension."""
    names = {f: f.relative_to(folder).with_suffix(".png") for f in files}
    counts: dict[Path, int] = {}
    for name in names.values():
        counts[name] = counts.get(name, 0) + 1
    return {f: Path(IMAGES_FOLDER) / (n if counts[n] == 1 else f.relative_to(folder).with_name(
        f.name + ".png")) for f, n in names.items()}


def _grid_names(count: int) -> list[tuple[str, str]]:
    return [(f"side_by_side_{i:03d}.png", f"alternating_{i:03d}.png")
            for i in range(1, math.ceil(count / GRID_PAIRS) + 1)]


def _readable_batches(files: Sequence[Path], size: int, crop: Sequence[int],
                      failures: list[tuple[Path, str]]) -> Iterator[_Batch]:
    """Full batches of GRID_PAIRS readable faces (the last may be smaller); failures collected."""
    pending_files: list[Path] = []
    pending: list[torch.Tensor] = []
    for start in range(0, len(files), GRID_PAIRS):
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


def reconstruct_folder(folder: Path, checkpoint: Path, out: Path, device: torch.device,
                       recursive: bool = False, sample: bool = False, seed: int = 0,
                       force: bool = False, feedback: Feedback = SILENT) -> dict[str, Any]:
    """Reconstructs every readable image in `folder`; returns a summary (see module docstring)."""
    model, meta = load_vae(checkpoint, device)
    prep = meta["preprocessing"]
    size, crop = prep["image_size"], prep["crop"]
    files = input_files(folder, recursive, out)
    targets = output_names(files, folder)
    grids = _grid_names(len(files))
    planned = [out / t for t in targets.values()] + [out / CSV_NAME]
    planned += [out / name for pair in grids for name in pair]
    existing = [p for p in planned if p.exists()]
    if existing and not force:
        raise UserError("{} output file(s) already exist in {} (first: {}); add {} to overwrite, "
                        "or choose another {}", len(existing), out, existing[0], Option("force"),
                        Option("out"))
    out.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(seed) if sample else None
    rows: list[dict[str, Any]] = []
    failures: list[tuple[Path, str]] = []
    written_grids: list[str] = []
    with feedback.progress(transient=True) as bars:
        bar = bars.add_task("reconstructing", total=len(files), status="")
        for index, batch in enumerate(_readable_batches(files, size, crop, failures)):
            originals = to_unit(batch.images)
            recons = reconstruct(model, batch.images, device, sample, generator)
            bce = F.binary_cross_entropy(recons, originals, reduction="none").flatten(1).mean(1)
            metrics = {"bce": bce, "mse": image_metrics.mse(recons, originals),
                       "psnr": image_metrics.psnr(recons, originals),
                       "ssim": image_metrics.ssim(recons, originals)}
            for i, file in enumerate(batch.files):
                save_png(recons[i], out / targets[file])
                rows.append({"file": file.relative_to(folder).as_posix(),
                             "output": targets[file].as_posix(),
                             **{k: float(v[i]) for k, v in metrics.items()}})
            side_name, alt_name = grids[index]
            save_png(side_by_side(originals, recons), out / side_name)
            save_grid(alternating(originals, recons), out / alt_name, columns=16)
            written_grids += [str(out / side_name), str(out / alt_name)]
            bars.update(bar, completed=min(len(files), len(rows) + len(failures)))
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=COLUMNS)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in row.items()})
    with atomic_write(out / CSV_NAME) as sink:
        sink.write(table.getvalue().encode("utf-8"))
    mean = {k: (sum(r[k] for r in rows) / len(rows) if rows else float("nan"))
            for k in ("bce", "mse", "psnr", "ssim")}
    return {
        "checkpoint": str(checkpoint), "folder": str(folder), "out": str(out),
        "images": len(rows), "sampled": sample, "mean": mean,
        "skipped": [{"path": str(p), "error": reason} for p, reason in failures],
        "csv": str(out / CSV_NAME), "grids": written_grids,
    }
