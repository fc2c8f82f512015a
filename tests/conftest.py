"""Shared fixtures: an isolated FMTOOL_HOME for every test, tiny synthetic data, real data if present.

Helpers the tests import live in tests/helpers/, never here."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers.fashion import synthetic_fashion

REPO = Path(__file__).resolve().parents[1]
# fixtures defined beside the helpers they use: `cnn_run`, and the report's `world` and `study`
pytest_plugins = ["tests.helpers.refusals", "tests.helpers.report"]


def pytest_configure(config: pytest.Config) -> None:
    """pytest-xdist runs one worker per core (addopts' `-n 2`): each worker's torch keeps to one
    thread, so the workers do not fight over the cores, and so do the processes tests start."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ["OMP_NUM_THREADS"] = "1"
        import torch

        torch.set_num_threads(1)


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


@pytest.fixture
def tiny_fashion(tmp_path: Path) -> Path:
    return synthetic_fashion(tmp_path / "fashion")
