"""Where fmtool keeps data sets, caches and runs.

Everything lives in platform directories (platformdirs) unless FMTOOL_HOME is set, in which
case it all moves under that one folder (tests and CI use a temporary directory).
"""

from __future__ import annotations

import os
from pathlib import Path

APP = "fmtool"
HOME_ENV = "FMTOOL_HOME"


def _home() -> Path | None:
    value = os.environ.get(HOME_ENV)
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    """Downloaded data sets and decoded caches: safe to delete, rebuilt on demand."""
    home = _home()
    if home is not None:
        return home / "cache"
    from platformdirs import user_cache_dir

    return Path(user_cache_dir(APP))


def data_dir() -> Path:
    """Runs (checkpoints, metrics, figures): the user's work, never deleted by fmtool."""
    home = _home()
    if home is not None:
        return home / "data"
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP))


def datasets_dir() -> Path:
    return cache_dir() / "datasets"


def runs_dir(kind: str | None = None) -> Path:
    root = data_dir() / "runs"
    return root / kind if kind else root
