"""Fashion-MNIST in its own IDX format, synthetic and learnable, for tests that need no real data."""

from __future__ import annotations

import gzip
from pathlib import Path


def write_idx(path: Path, array, gzipped: bool = True) -> None:
    """Writes a uint8 numpy array as an IDX file (the Fashion-MNIST format)."""
    import numpy as np

    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(size).to_bytes(4, "big") for size in array.shape)
    data = header + array.tobytes()
    path.write_bytes(gzip.compress(data) if gzipped else data)


def synthetic_fashion(folder: Path, train: int = 200, test: int = 100, seed: int = 0) -> Path:
    """A learnable stand-in for Fashion-MNIST: each class is a bright bar at its own position."""
    import numpy as np

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split, count in (("train", train), ("t10k", test)):
        labels = rng.integers(0, 10, size=count).astype(np.uint8)
        images = rng.integers(0, 40, size=(count, 28, 28)).astype(np.uint8)
        for index, label in enumerate(labels):
            images[index, 2 + 2 * label: 5 + 2 * label, 4:24] = 230
        write_idx(folder / f"{split}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{split}-labels-idx1-ubyte.gz", labels)
    return folder
