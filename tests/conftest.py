"""Shared fixtures: an isolated FMTOOL_HOME for every test, tiny synthetic data, real data if present."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def fmtool_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own data and cache folders; nothing touches the user's."""
    home = tmp_path / "fmtool-home"
    monkeypatch.setenv("FMTOOL_HOME", str(home))
    for variable in ("FMTOOL_FASHION_DIR", "FMTOOL_FACES_DIR"):
        monkeypatch.delenv(variable, raising=False)
    return home


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models on shared CPU cores: one thread avoids OpenMP spin-waiting (5x faster here).
    A module asks for it with `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data beside the repository (or $FMTOOL_SHARED_DATA); skips when absent."""
    root = Path(os.environ.get("FMTOOL_SHARED_DATA", REPO.parent / "shared" / "data"))
    if not root.is_dir():
        pytest.skip(f"real data not found at {root}")
    return root


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


@pytest.fixture
def tiny_fashion(tmp_path: Path) -> Path:
    return synthetic_fashion(tmp_path / "fashion")
