"""Run folders: their names, the latest run, run.json, metrics.jsonl and the one-writer lock.

A run lives in `runs/<kind>/<name>/` (see `paths.runs_dir`) and holds run.json (the recipe and
options it started with), metrics.jsonl (one line per finished epoch), last.pt (resumable) and
best.pt (the selected epoch). The lock is an OS file lock, so it vanishes with a killed process.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

from fmtool.engine import io
from fmtool.engine.paths import runs_dir
from fmtool.errors import Option, UserError

RUN_KINDS = ("cnn", "vae")
LAST_CHECKPOINT = "last.pt"
BEST_CHECKPOINT = "best.pt"
METRICS_FILE = "metrics.jsonl"
RUN_FILE = "run.json"
_RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


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
    """The folder a `train` command writes to: a new run, or the one a resume continues."""
    if resume:
        folder = run_dir(kind, name) if name else latest_run(kind)
        if not (folder / LAST_CHECKPOINT).is_file():
            raise UserError("run {} has no checkpoint to resume; start it without {}",
                            folder.name, Option("resume"))
        return folder
    folder = run_dir(kind, name or new_run_name())
    if (folder / LAST_CHECKPOINT).exists():
        raise UserError("run {} already exists; add {} to continue it, or choose another {}",
                        folder.name, Option("resume"), Option("name"))
    return folder


@contextlib.contextmanager
def run_lock(folder: Path) -> Iterator[None]:
    """One training process per run folder: a second one refuses instead of interleaving."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise UserError(f"cannot write to the run folder {folder}: {exc.strerror or exc}; "
                        "choose a writable FMTOOL_HOME") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise UserError("run {} is being trained by another process; wait for it or choose "
                            "another {}", folder.name, Option("name")) from exc
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        yield
    finally:
        os.close(fd)


def write_run_info(folder: Path, info: dict[str, Any]) -> None:
    io.write_text(folder / RUN_FILE, json.dumps(info, indent=2) + "\n")


def read_run_info(folder: Path) -> dict[str, Any]:
    """The recipe and options a run was started with (what a resume continues with)."""
    path = folder / RUN_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{path} is missing or damaged; this run cannot be resumed") from exc


def write_metrics(folder: Path, history: list[dict[str, Any]]) -> None:
    """Rewrites the metrics file from the checkpoint's history: each epoch exactly once."""
    io.write_text(folder / METRICS_FILE, "".join(json.dumps(r) + "\n" for r in history))


def read_metrics(folder: Path) -> list[dict[str, Any]]:
    path = folder / METRICS_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
