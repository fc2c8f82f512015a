"""Fashion-MNIST: find or download the four IDX files, decode them once to uint8 tensors, and
turn whole batches into the report's model input (28x28 -> 32x32, standardised or min-max scaled)
with tensor ops.

A local copy is any folder with the four standard files, gzipped or not (`--data-dir`, or the
FMTOOL_FASHION_DIR environment variable). Otherwise the files are downloaded once through
torchvision (official mirrors, checksummed) into the user cache.
"""

from __future__ import annotations

import gzip
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from fmtool.engine.batching import seeded_subset
from fmtool.engine.paths import datasets_dir, folder_problem
from fmtool.errors import Option, UserError

ENV_DIR = "FMTOOL_FASHION_DIR"
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
# Statistics of the 60,000 training images; the report normalises but does not give values.
MEAN = 0.2860
STD = 0.3530
SOURCE_SIZE = 28
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_IDX_DTYPE = {0x08: torch.uint8}


@dataclass
class FashionMNIST:
    train_images: torch.Tensor  # uint8 [60000, 28, 28]
    train_labels: torch.Tensor  # int64 [60000]
    test_images: torch.Tensor   # uint8 [10000, 28, 28]
    test_labels: torch.Tensor   # int64 [10000]
    source: Path


def read_idx(path: Path) -> torch.Tensor:
    """Decodes one IDX file (gzipped or plain, told apart by content, not name)."""
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise UserError(f"{path} could not be read ({exc}); download it again") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPE:
        raise UserError(f"{path} is not an IDX file of unsigned bytes; download it again")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise UserError(f"{path} is truncated; download it again")
    shape = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    if ndim == 0 or 0 in shape:
        raise UserError(f"{path} holds no data (its shape is {shape}); it is damaged, "
                        "download it again")
    count = 1
    for size in shape:
        count *= size
    if len(raw) - header != count:
        raise UserError(f"{path} holds {len(raw) - header} bytes of data, expected {count} for "
                        f"shape {shape}; it is truncated or damaged, download it again")
    data = torch.frombuffer(bytearray(raw[header:]), dtype=torch.uint8)
    return data.reshape(shape)


def _find_file(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx")):
        if (folder / name).is_file():
            return folder / name
    return None


def held_out_size(val_size: int, train_count: int) -> int:
    """How many of `train_count` training images to hold out for choosing the best epoch: the
    recipe's `val_size`, but never more than a tenth of them (small --limit runs). A split that
    would shrink to nothing is refused rather than quietly moving the choice to the test set."""
    size = min(val_size, train_count // 10)
    if val_size and not size:
        raise UserError("{} {} leaves too few training images to hold out any for choosing the "
                        "best epoch (at most a tenth: {}); give {} of at least 10, or {} 0 to "
                        "choose it on the test set", Option("limit"), train_count,
                        train_count // 10, Option("limit"), Option("val_size"))
    return size


def _files_in(folder: Path) -> dict[str, Path]:
    """The four IDX files in `folder` (each .gz or plain), without reading them; a UserError
    naming what is missing otherwise."""
    if not folder.is_dir():
        raise UserError(f"Fashion-MNIST folder {folder} {folder_problem(folder)}")
    found = {key: _find_file(folder, stem) for key, stem in FILES.items()}
    missing = [FILES[key] for key, path in found.items() if path is None]
    if missing:
        raise UserError(f"{folder} lacks {', '.join(missing)} (.gz or plain); "
                        "give a folder with all four Fashion-MNIST IDX files")
    return found  # type: ignore[return-value]


def load_from_dir(folder: Path) -> FashionMNIST:
    """Loads the four IDX files from `folder`, checking that images and labels agree."""
    tensors = {key: read_idx(path) for key, path in _files_in(folder).items()}
    for split in ("train", "test"):
        images, labels = tensors[f"{split}_images"], tensors[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise UserError(f"{folder}: {split} images {tuple(images.shape)} and labels "
                            f"{tuple(labels.shape)} do not match; the files are damaged")
        if tuple(images.shape[1:]) != (SOURCE_SIZE, SOURCE_SIZE):
            raise UserError(f"{folder}: {split} images are {images.shape[1]}x{images.shape[2]} "
                            f"pixels, Fashion-MNIST's are {SOURCE_SIZE}x{SOURCE_SIZE}; "
                            "not Fashion-MNIST")
        if int(labels.max()) >= len(CLASSES):
            raise UserError(f"{folder}: {split} labels go beyond {len(CLASSES) - 1}; not Fashion-MNIST")
    return FashionMNIST(
        train_images=tensors["train_images"],
        train_labels=tensors["train_labels"].long(),
        test_images=tensors["test_images"],
        test_labels=tensors["test_labels"].long(),
        source=folder,
    )


def download(root: Path) -> Path:
    """Fetches the official files through torchvision into `root`; returns the raw folder."""
    from torchvision.datasets import FashionMNIST as TorchvisionFashion

    raw = root / "FashionMNIST" / "raw"
    if all(_find_file(raw, stem) for stem in FILES.values()):
        return raw
    try:
        TorchvisionFashion(str(root), train=True, download=True)
        TorchvisionFashion(str(root), train=False, download=True)
    except Exception as exc:  # URLError, RuntimeError on bad checksums, socket errors ...
        raise UserError(
            "could not download Fashion-MNIST ({}); check the network, or pass {} DIR (or set {}) "
            "to a folder with the four IDX files", type(exc).__name__, Option("data_dir"), ENV_DIR
        ) from exc
    return raw


def fashion_folder(data_dir: Path | None = None) -> Path:
    """`--data-dir`, else $FMTOOL_FASHION_DIR, else the cached download (fetched on first use),
    once it is known to hold the four IDX files; nothing is read, so a command that needs the
    data late (`fmtool report`) can refuse a wrong folder before its first long step."""
    if data_dir is None and os.environ.get(ENV_DIR):
        data_dir = Path(os.environ[ENV_DIR]).expanduser()
    folder = download(datasets_dir()) if data_dir is None else data_dir
    _files_in(folder)
    return folder


def load_fashion_mnist(data_dir: Path | None = None) -> FashionMNIST:
    """The data set in `fashion_folder(data_dir)`."""
    return load_from_dir(fashion_folder(data_dir))


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 [B,28,28] (any device) -> float [B,1,28,28] in [0, 1]."""
    return images.unsqueeze(1).float().div_(255.0)


SCALINGS = ("standard", "minmax")


def normalise(x: torch.Tensor, size: int = 32, scaling: str = "standard") -> torch.Tensor:
    """float [B,1,H,W] in [0, 1] -> the model's input: bilinear resize to size, then scaled.

    `standard` standardises with the training set's mean and standard deviation (the report's
    text). `minmax` maps each image's darkest pixel to 0 and its brightest to 1 (the author's
    code; the report does not say whether per image or per data set, and we chose per image, so
    any input ends in [0, 1]; every Fashion-MNIST image has a black pixel and 92% reach 255, so
    it differs from dividing by 255 only in the contrast of the faintest images). An image of one
    grey level becomes all zeros."""
    if scaling not in SCALINGS:
        raise ValueError(f"scaling must be one of {', '.join(SCALINGS)}, got {scaling!r}")
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    if scaling == "standard":
        return x.sub_(MEAN).div_(STD)
    low = x.amin(dim=(-2, -1), keepdim=True)
    span = x.amax(dim=(-2, -1), keepdim=True) - low
    # Below a quarter of a grey level the spread is the resize's rounding, not the picture.
    return x.sub_(low).div_(span.masked_fill_(span < 1 / 1024, math.inf))


def to_model_input(images: torch.Tensor, size: int = 32, scaling: str = "standard") -> torch.Tensor:
    """uint8 [B,28,28] (any device) -> float [B,1,size,size], bilinear resize, then `scaling`
    (see `normalise`)."""
    return normalise(to_unit(images), size, scaling)


def subset(images: torch.Tensor, labels: torch.Tensor, limit: int | None,
           seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded random subset (the shared copy is sorted by label, so never take the head)."""
    if limit is not None and limit <= 0:
        raise UserError("{} must be positive, got {}", Option("limit"), limit)
    if limit is None or limit >= len(images):
        return images, labels
    order = seeded_subset(len(images), limit, seed)
    return images[order], labels[order]
