"""Faces for the VAE: find them, split them by person, preprocess them once, keep them cached.

A local copy is any folder of images, searched recursively (`--data-dir`, else the
FMTOOL_FACES_DIR environment variable), for example LFW's `lfw-deepfunneled/<Person>/*.jpg`.
Without one, LFW (the funneled variant, the one scikit-learn offers) is downloaded once from its
official mirror through scikit-learn into the cache.

Preprocessing is the report's: a centre crop of 224/250 of the shorter side (CenterCrop(224) of
LFW's 250x250 images), then a bilinear resize to the model's size, RGB, values in [0, 1]. The
same function serves training, `reconstruct` and `fuse`, so user images see what training saw.
Training decodes the JPEGs once into a uint8 tensor file in the cache, keyed by the files (name,
size, modification time) and the preprocessing, so later epochs and runs never decode again.

Choices (tested in tests/data/test_faces.py):
- A person is the image's folder; an image directly in the data folder is its own person, named by
  its file name without a trailing `_NNNN` (LFW's `Name_Surname_0001.jpg` convention).
- The validation people are drawn with a fixed seed (SPLIT_SEED), not the training seed, so runs
  with different seeds are validated on the same people; `--limit` and `--val-limit` then take
  seeded subsets of each side, as `train cnn` does.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from PIL import Image

from fmtool.data.images import ImageReadError, on_white, read_image, to_grayscale
from fmtool.data.inputs import IMAGE_EXTENSIONS, list_images
from fmtool.engine.batching import seeded_subset
from fmtool.engine.feedback import SILENT, Feedback
from fmtool.engine.io import atomic_write
from fmtool.engine.paths import cache_dir, datasets_dir, folder_problem
from fmtool.errors import Option, UserError

ENV_DIR = "FMTOOL_FACES_DIR"
CROP = (224, 250)  # keep 224/250 of the shorter side, centred
RESAMPLE = "bilinear"
SPLIT_SEED = 0
MIN_TRAIN_FACES = 2  # BatchNorm cannot train on a batch of one image
CACHE_VERSION = 1
_NOBODY = 10**9  # asks scikit-learn for nobody: it downloads and unpacks, but decodes nothing
_NUMBERED = re.compile(r"^(.+?)_\d+$")




def person_of(path: Path, root: Path) -> str:
    relative = path.relative_to(root)
    if len(relative.parts) > 1:
        return relative.parent.as_posix()
    match = _NUMBERED.match(path.stem)
    return match.group(1) if match else path.stem


def split_by_person(persons: Sequence[str], val_fraction: float,
                    seed: int = SPLIT_SEED) -> tuple[list[int], list[int]]:
    """Indices of training and validation images; no person is on both sides.

    People are taken in a seeded random order until the validation side holds at least
    `val_fraction` of the images; at least one person stays on each side.
    """
    if not 0.0 < val_fraction < 1.0:
        raise UserError("{} must be between 0 and 1, got {}", Option("val_fraction"), val_fraction)
    counts = Counter(persons)
    names = sorted(counts)
    if len(names) < 2:
        raise UserError("the faces folder holds only one person; a validation split by person "
                        "needs images of at least two (one sub-folder per person)")
    order = torch.randperm(len(names), generator=torch.Generator().manual_seed(seed)).tolist()
    target = max(1, round(val_fraction * len(persons)))
    held_out: set[str] = set()
    count = 0
    for index in order:
        if count >= target or len(held_out) == len(names) - 1:
            break
        held_out.add(names[index])
        count += counts[names[index]]
    train = [i for i, p in enumerate(persons) if p not in held_out]
    val = [i for i, p in enumerate(persons) if p in held_out]
    return train, val


def subset_of(indices: list[int], limit: int | None, seed: int) -> list[int]:
    """`limit` of `indices` drawn at random, kept in their original order."""
    if limit is None or limit >= len(indices):
        return indices
    return [indices[i] for i in sorted(seeded_subset(len(indices), limit, seed).tolist())]


def to_rgb(image: Image.Image) -> Image.Image:
    """Any mode -> RGB; transparency becomes white, 16-bit and float greys are rescaled."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        return Image.fromarray(to_grayscale(image)).convert("RGB")
    return on_white(image).convert("RGB")


def face_array(image: Image.Image, size: int, crop: Sequence[int] = CROP) -> np.ndarray:
    """A decoded image -> uint8 [size, size, 3]: centre crop crop[0]/crop[1] of the shorter side.

    The crop comes before any conversion, so the work and memory are those of the square kept,
    not of the whole picture (a 20 x 3,000,000 strip keeps 18 x 18 pixels)."""
    width, height = image.size
    side = max(1, round(min(width, height) * crop[0] / crop[1]))
    left, top = round((width - side) / 2), round((height - side) / 2)
    image = to_rgb(image.crop((left, top, left + side, top + side)))
    if side != size:
        image = image.resize((size, size), Image.Resampling.BILINEAR)
    return np.array(image, dtype=np.uint8)  # a writable copy, as torch.from_numpy wants


def load_face(path: Path, size: int, crop: Sequence[int] = CROP) -> np.ndarray:
    """A file on disk -> uint8 [size, size, 3], or ImageReadError with a short reason."""
    return read_image(path, lambda image: face_array(image, size, crop))


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 [B, 3, S, S] (any device) -> float in [0, 1], the model's input and BCE target."""
    return images.float().div_(255.0)


def decode_faces(files: Sequence[Path], size: int, crop: Sequence[int] = CROP,
                 feedback: Feedback | None = None) -> tuple[torch.Tensor, list[bool], list[tuple[Path, str]]]:
    """Decodes and preprocesses `files` in threads (Pillow releases the GIL while decoding).

    Returns uint8 [n_ok, 3, size, size] in the order of `files`, which files worked, and
    (file, reason) for those that did not.
    """
    out = torch.empty(len(files), 3, size, size, dtype=torch.uint8)
    errors: dict[int, str] = {}

    def work(index: int) -> None:
        try:
            out[index] = torch.from_numpy(load_face(files[index], size, crop)).permute(2, 0, 1)
        except ImageReadError as exc:
            errors[index] = str(exc)

    workers = max(1, min(8, os.cpu_count() or 1))
    pool = ThreadPoolExecutor(workers)
    try:
        futures = [pool.submit(work, i) for i in range(len(files))]
        if feedback is not None:
            with feedback.progress(transient=True) as bars:
                bar = bars.add_task(f"decoding {len(files)} faces (once; cached)",
                                    total=len(files), status="")
                for future in as_completed(futures):
                    future.result()
                    bars.advance(bar)
        for future in futures:
            future.result()
    except BaseException:
        # Ctrl-C (or an error) drops the queued decodes instead of waiting for all of them, as
        # leaving the `with` block would; only the few already running finish, in the background.
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    ok = [i not in errors for i in range(len(files))]
    if errors:
        out = out[torch.tensor(ok)]
    return out, ok, [(files[i], errors[i]) for i in sorted(errors)]


def _cache_path(root: Path, files: Sequence[Path], size: int,
                crop: Sequence[int] = CROP) -> Path:
    digest = hashlib.sha256()
    digest.update(f"{CACHE_VERSION}|{root.resolve()}|{size}|{tuple(crop)}|{RESAMPLE}".encode())
    for path in files:
        stat = path.stat()
        digest.update(f"|{path.relative_to(root).as_posix()}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", root.name) or "faces"
    return cache_dir() / "faces" / f"{safe}-{size}px-{digest.hexdigest()[:16]}.pt"


def cached_faces(root: Path, files: Sequence[Path], size: int, feedback: Feedback = SILENT,
                 crop: Sequence[int] = CROP) -> tuple[torch.Tensor, list[bool], list[tuple[Path, str]]]:
    """`decode_faces` through a cache file; decoding happens only the first time."""
    path = _cache_path(root, files, size, crop)
    if path.is_file():
        try:
            saved = torch.load(path, weights_only=True)
            ok = saved["ok"]
            failed = [(root / name, reason) for name, reason in saved["failed"]]
            if len(ok) == len(files) and saved["images"].shape[0] == sum(ok):
                return saved["images"], ok, failed
        except Exception:  # a damaged cache is rebuilt, never fatal
            pass
    images, ok, failed = decode_faces(files, size, crop, feedback=feedback)
    payload = {"images": images, "ok": ok,
               "failed": [[p.relative_to(root).as_posix(), reason] for p, reason in failed]}
    try:
        with atomic_write(path) as sink:
            torch.save(payload, sink)
    except UserError as exc:
        feedback.note(f"{exc}; the faces will be decoded again next time")
    return images, ok, failed


def download_lfw(root: Path, feedback: Feedback = SILENT, fetch: Callable[[Path], None] | None = None,
                 option: str = "data_dir") -> Path:
    """LFW (funneled) fetched once through scikit-learn into `root`; returns the image folder.
    `option` names the parameter that gives a local copy instead (in the error messages)."""
    folder = root / "lfw_home" / "lfw_funneled"
    if folder.is_dir() and any(folder.iterdir()):
        return folder
    feedback.note(f"downloading LFW (funneled, about 230 MB) through scikit-learn into {root}")
    try:
        (fetch or _fetch_with_sklearn)(root)
    except Exception as exc:  # URLError, socket errors, checksum mismatch ...
        raise UserError(
            "could not download LFW ({}: {}); check the network, or pass {} DIR (or set {}) to a "
            "folder of face images", type(exc).__name__, str(exc)[:120], Option(option), ENV_DIR
        ) from exc
    if not folder.is_dir():
        raise UserError("the LFW download did not produce {}; delete {} and try again, or pass "
                        "{} DIR", folder, root / "lfw_home", Option(option))
    return folder


def _fetch_with_sklearn(root: Path) -> None:
    from sklearn.datasets import fetch_lfw_people

    root.mkdir(parents=True, exist_ok=True)
    try:
        fetch_lfw_people(data_home=str(root), funneled=True, min_faces_per_person=_NOBODY,
                         download_if_missing=True)
    except ValueError as exc:  # "too restrictive": the files are there, nothing was decoded
        if "too restrictive" not in str(exc):
            raise


def resolve_faces_dir(data_dir: Path | None, feedback: Feedback = SILENT,
                      option: str = "data_dir") -> Path:
    """`--data-dir` (or the parameter `option` names), else $FMTOOL_FACES_DIR, else LFW
    downloaded into the cache."""
    if data_dir is None and os.environ.get(ENV_DIR):
        data_dir = Path(os.environ[ENV_DIR]).expanduser()
    if data_dir is None:
        return download_lfw(datasets_dir(), feedback, option=option)
    if not data_dir.is_dir():
        raise UserError(f"faces folder {data_dir} {folder_problem(data_dir)}")
    return data_dir


@dataclass
class FaceSplits:
    train: torch.Tensor  # uint8 [N, 3, S, S]
    val: torch.Tensor
    train_people: int
    val_people: int
    source: Path
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    def info(self, val_fraction: float) -> dict[str, Any]:
        return {"source": str(self.source), "train_images": len(self.train),
                "val_images": len(self.val), "train_people": self.train_people,
                "val_people": self.val_people, "val_fraction": val_fraction,
                "split": f"by person (folder), seed {SPLIT_SEED}", "skipped": len(self.skipped)}


def load_face_splits(data_dir: Path | None, image_size: int, val_fraction: float = 0.1,
                     seed: int = 0, limit: int | None = None,
                     val_limit: int | None = None, feedback: Feedback = SILENT) -> FaceSplits:
    """Training and validation faces, split by person, preprocessed and cached."""
    root = resolve_faces_dir(data_dir, feedback)
    files = list_images(root)
    if not files:
        raise UserError(f"no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) found in {root}")
    persons = [person_of(f, root) for f in files]
    train_index, val_index = split_by_person(persons, val_fraction)
    train_index = subset_of(train_index, limit, seed)
    val_index = subset_of(val_index, val_limit, seed)
    chosen = train_index + val_index
    images, ok, failed = cached_faces(root, [files[i] for i in chosen], image_size, feedback)
    if failed:
        shown = "; ".join(f"{p.relative_to(root)} ({reason})" for p, reason in failed[:3])
        more = f" and {len(failed) - 3} more" if len(failed) > 3 else ""
        feedback.note(f"skipped {len(failed)} unreadable images: {shown}{more}")
    kept = [i for i, good in zip(chosen, ok) if good]
    n_train = sum(ok[:len(train_index)])
    if n_train < MIN_TRAIN_FACES or n_train == len(kept):
        raise UserError(f"{root} gave {n_train} training and {len(kept) - n_train} validation "
                        f"faces; training needs at least {MIN_TRAIN_FACES} readable images "
                        "(BatchNorm learns from a batch's spread) and validation at least one")
    return FaceSplits(
        train=images[:n_train], val=images[n_train:],
        train_people=len({persons[i] for i in kept[:n_train]}),
        val_people=len({persons[i] for i in kept[n_train:]}),
        source=root, skipped=failed,
    )


@dataclass
class HeldOutFaces:
    """The validation people of `load_face_splits`' split of a folder (the same people), decoded:
    what a trained model is measured on."""

    root: Path
    files: list[Path]  # the readable held-out images, in the folder's order
    persons: list[str]  # each file's person
    images: torch.Tensor  # uint8 [len(files), 3, S, S]
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def people(self) -> int:
        return len(set(self.persons))


def face_files(data_dir: Path | None, feedback: Feedback = SILENT,
               option: str = "data_dir") -> tuple[Path, list[Path]]:
    """The faces folder (`resolve_faces_dir`; `option` names the parameter in its messages) and
    its images, listed, not read; a folder without any is a UserError."""
    root = resolve_faces_dir(data_dir, feedback, option=option)
    files = list_images(root)
    if not files:
        raise UserError("no face images found in {}; give a folder of faces with {}", root,
                        Option(option))
    return root, files


def held_out_faces(data_dir: Path | None, image_size: int, val_fraction: float,
                   feedback: Feedback = SILENT, crop: Sequence[int] = CROP,
                   option: str = "data_dir") -> HeldOutFaces:
    """The held-out faces of `face_files`' folder, decoded through the cache without the
    training faces."""
    root, files = face_files(data_dir, feedback, option)
    persons = [person_of(f, root) for f in files]
    _, val_index = split_by_person(persons, val_fraction)
    images, ok, failed = cached_faces(root, [files[i] for i in val_index], image_size, feedback,
                                      crop)
    kept = [i for i, good in zip(val_index, ok) if good]
    return HeldOutFaces(root, [files[i] for i in kept], [persons[i] for i in kept], images, failed)
