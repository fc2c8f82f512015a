"""Where fmtool keeps data sets and runs, and how it finds the latest run.

Everything lives in platform directories (platformdirs) unless FMTOOL_HOME is set, in which
case it all moves under that one folder (tests and CI use a temporary directory).
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path

from fmtool.errors import UserError

APP = "fmtool"
HOME_ENV = "FMTOOL_HOME"
RUN_KINDS = ("cnn", "vae")
LAST_CHECKPOINT = "last.pt"
BEST_CHECKPOINT = "best.pt"
_RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


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


def check_run_name(name: str) -> str:
    if not _RUN_NAME.match(name):
        raise UserError(
            f"run name {name!r} is not usable as a folder name; use letters, digits, '.', '_' or '-'"
        )
    return name


def new_run_name() -> str:
    """Sortable by time, so the newest run is also the last in a listing."""
    return datetime.now().strftime("%Y%m%d-%H%M%S")


def run_dir(kind: str, name: str) -> Path:
    return runs_dir(kind) / check_run_name(name)


def list_runs(kind: str) -> list[Path]:
    """Runs of one kind that hold a checkpoint, oldest first (by the checkpoint's time)."""
    root = runs_dir(kind)
    if not root.is_dir():
        return []
    runs = [p for p in root.iterdir() if (p / LAST_CHECKPOINT).is_file()]
    return sorted(runs, key=lambda p: (p / LAST_CHECKPOINT).stat().st_mtime)


def latest_run(kind: str) -> Path:
    runs = list_runs(kind)
    if not runs:
        raise UserError(f"no {kind.upper()} checkpoint yet; run `fmtool train {kind}` first")
    return runs[-1]


def resolve_checkpoint(path: Path | None, kind: str) -> Path:
    """A named checkpoint file or run folder, else the latest run of `kind`; prefers best.pt."""
    if path is None:
        folder = latest_run(kind)
    elif path.is_dir():
        folder = path
    elif path.is_file():
        return path
    else:
        raise UserError(f"checkpoint {path} does not exist; give a .pt file or a run folder")
    for name in (BEST_CHECKPOINT, LAST_CHECKPOINT):
        if (folder / name).is_file():
            return folder / name
    raise UserError(f"{folder} holds no checkpoint; run `fmtool train {kind}` first")


def training_run_dir(kind: str, name: str | None, resume: bool) -> Path:
    """The folder a `train` command writes to: a new run, or the one `--resume` continues."""
    if resume:
        folder = run_dir(kind, name) if name else latest_run(kind)
        if not (folder / LAST_CHECKPOINT).is_file():
            raise UserError(f"run {folder.name} has no checkpoint to resume; "
                            f"start it without --resume")
        return folder
    folder = run_dir(kind, name or new_run_name())
    if (folder / LAST_CHECKPOINT).exists():
        raise UserError(f"run {folder.name} already exists; add --resume to continue it, "
                        "or choose another --name")
    return folder
