"""Run folders: their names, the latest run, run.json, metrics.jsonl and the one-writer lock.

A run lives in `runs/<kind>/<name>/` (see `paths.runs_dir`) and holds run.json (the recipe and
options it started with), metrics.jsonl (one line per finished epoch), last.pt (resumable) and
best.pt (the selected epoch). While a run trains, its folder itself is locked (an OS lock on the
folder, not a file in it), so the lock leaves nothing behind and vanishes with a killed process.
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
from fmtool.engine.bundled import BUILTIN, bundled_checkpoint, is_bundled
from fmtool.engine.paths import data_dir, runs_dir, what_is
from fmtool.errors import Option, UserError

RUN_KINDS = ("cnn", "vae")
LAST_CHECKPOINT = "last.pt"
BEST_CHECKPOINT = "best.pt"
METRICS_FILE = "metrics.jsonl"
RUN_FILE = "run.json"
# The lock file of fmtool 0.2 and earlier, and where the file system cannot lock a folder (see
# run_lock).
LOCK_FILE = ".lock"
_RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
MAX_RUN_NAME = 255  # bytes in a file name on every common file system


def check_run_name(name: str) -> str:
    """`name` if it is usable as a run folder's name, else a UserError that says what is.

    The whole name must match (a trailing newline is refused, not quietly kept), and it must fit
    in one file name (the folder's)."""
    if not isinstance(name, str) or not _RUN_NAME.fullmatch(name) or len(name) > MAX_RUN_NAME:
        text = str(name)
        # Quoted as typed; the command line escapes control characters such as a newline.
        shown = f"'{text}'" if len(text) <= 60 else f"'{text[:40]}...' ({len(text)} characters)"
        raise UserError("{} {} is not usable as a folder name; use 1 to {} letters, digits, '.', "
                        "'_' or '-', starting with a letter or digit", Option("name"), shown,
                        MAX_RUN_NAME)
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
    elif path.exists():
        raise UserError(f"checkpoint {path} is not a regular file (it is {what_is(path)}); "
                        "give a .pt file or a run folder")
    elif path.is_symlink():
        raise UserError(f"checkpoint {path} is a broken symbolic link (to {os.readlink(path)}); "
                        "give a .pt file or a run folder")
    else:
        raise UserError(f"checkpoint {path} does not exist; give a .pt file or a run folder")
    for name in (BEST_CHECKPOINT, LAST_CHECKPOINT):
        if (folder / name).is_file():
            return folder / name
    # Only a folder the user named gets here (a run fmtool lists has last.pt), and the
    # commands that take either kind (info, export) call this too: no advice to train one kind.
    raise UserError(f"{folder} holds no checkpoint (best.pt or last.pt); give a .pt file or a "
                    "run folder")


def choose_checkpoint(path: Path | None, kind: str) -> tuple[Path, str | None]:
    """The checkpoint a command reads, and why when fmtool chose it (None when the user named it).

    `builtin` names the model that ships with fmtool; without a path: the latest run of `kind`,
    else the bundled model, else the error that says to train one."""
    if path is not None and path.as_posix() == BUILTIN:
        if os.path.lexists(BUILTIN):  # the command line gives ./builtin and builtin alike
            raise UserError(f"{BUILTIN} names the bundled model, but there is also ./{BUILTIN} "
                            f"here; give ./{BUILTIN}/{BEST_CHECKPOINT} for the local one, or run "
                            "from another folder for the bundled one")
        bundled = bundled_checkpoint(kind)
        if bundled is None:
            raise UserError(f"this fmtool ships no bundled {kind.upper()} model; give a checkpoint "
                            f"or train one with `fmtool train {kind}`")
        return bundled, f"the bundled {kind.upper()} model"
    if path is None and not list_runs(kind):
        bundled = bundled_checkpoint(kind)
        if bundled is not None:
            return bundled, f"the bundled {kind.upper()} model (no {kind.upper()} run yet)"
    if path is None:
        return resolve_checkpoint(None, kind), f"the latest {kind.upper()} run"
    return resolve_checkpoint(path, kind), None


def is_run_folder(folder: Path) -> bool:
    """Whether `folder` is a run folder fmtool made (runs/<kind>/<name>/ under its data folder).

    Files that fmtool names in its run folders (eval's and project's default figures) are its
    own to rewrite; anywhere else a file that exists is the user's.
    """
    try:
        relative = folder.resolve().relative_to(runs_dir().resolve())
    except (OSError, ValueError):
        return False
    return len(relative.parts) == 2 and relative.parts[0] in RUN_KINDS


def figures_home(checkpoint: Path) -> tuple[Path, bool]:
    """Where a command puts the figures it names itself for `checkpoint`, and whether those
    names are fmtool's own there (rewritten freely) rather than the user's (kept without force):
    beside it in a run folder fmtool made (own); fmtool's data folder for a bundled model, never
    the installed package (own); anywhere else beside it (the user's)."""
    if is_bundled(checkpoint):
        return data_dir() / "bundled" / checkpoint.stem, True
    return checkpoint.parent, is_run_folder(checkpoint.parent)


def training_run_dir(kind: str, name: str | None, resume: bool) -> Path:
    """The folder a `train` command writes to: a new run, or the one a resume continues."""
    if resume:
        folder = latest_run(kind) if name is None else run_dir(kind, name)
        if not (folder / LAST_CHECKPOINT).is_file():
            raise UserError("run {} has no checkpoint to resume; start it without {}",
                            folder.name, Option("resume"))
        return folder
    folder = run_dir(kind, new_run_name() if name is None else name)
    if (folder / LAST_CHECKPOINT).exists():
        raise UserError("run {} already exists; add {} to continue it, or choose another {}",
                        folder.name, Option("resume"), Option("name"))
    return folder


@contextlib.contextmanager
def run_lock(folder: Path, new: bool = False) -> Iterator[None]:
    """One training process per run folder: a second one refuses instead of interleaving.

    The lock is the folder's own (flock on its descriptor), so no file is left in the run when
    training ends, and one that a killed process held is free again at once. Where the file
    system cannot lock a folder (NFS and CIFS emulate flock with byte-range locks, which need a
    file open for writing), a `.lock` file in it is locked instead and stays, as fmtool 0.2's
    did. A `.lock` that fmtool 0.2 left is removed once it is known that no process holds it.
    With `new` (a run that starts rather than resumes) the name is checked again once the lock
    is held: a run of the same name that finished between `training_run_dir`'s check and now is
    refused, never replaced (the lock is held from this check to the end of training)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise UserError(f"cannot write to the run folder {folder}: {exc.strerror or exc}; "
                        "choose a writable FMTOOL_HOME") from exc
    held = [fd]
    try:
        try:
            # The folder's lock, else the file's; with the folder's, a `.lock` left by fmtool 0.2
            # is checked too (a 0.2 process may still be training this run).
            held.append(_lock_file(folder, keep=not _lock(fd)))
        except BlockingIOError as exc:
            raise UserError("run {} is being trained by another process; wait for it or choose "
                            "another {}", folder.name, Option("name")) from exc
        if new and (folder / LAST_CHECKPOINT).exists():
            raise UserError("run {} already exists (another process made it just now); add {} "
                            "to continue it, or choose another {}", folder.name, Option("resume"),
                            Option("name"))
        yield
    finally:
        for descriptor in held:
            if descriptor >= 0:
                os.close(descriptor)


def _lock(fd: int) -> bool:
    """Locks the folder's descriptor; False where the file system cannot lock a folder. A lock
    another process holds raises BlockingIOError."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise
    except OSError:
        return False
    return True


def _lock_file(folder: Path, keep: bool) -> int:
    """Locks `folder`'s `.lock` file and returns its descriptor. With `keep` it is the run's
    lock (made if missing, left in place); without, it is an old fmtool's leftover, removed once
    locked (no descriptor kept: -1), and nothing to do when there is none."""
    path = folder / LOCK_FILE
    if not keep and not path.exists():
        return -1
    try:
        fd = os.open(path, os.O_RDWR | (os.O_CREAT if keep else 0), 0o644)
    except FileNotFoundError:
        return -1
    except OSError as exc:
        raise UserError(f"cannot lock the run folder {folder}: {exc.strerror or exc}; "
                        "choose an FMTOOL_HOME on a local disk") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise
    except OSError as exc:
        os.close(fd)
        raise UserError(f"cannot lock the run folder {folder}: {exc.strerror or exc}; "
                        "choose an FMTOOL_HOME on a local disk") from exc
    if keep:
        return fd
    with contextlib.suppress(OSError):
        path.unlink()
    os.close(fd)
    return -1


def write_run_info(folder: Path, info: dict[str, Any]) -> None:
    io.write_text(folder / RUN_FILE, json.dumps(info, indent=2) + "\n")


def read_run_info(folder: Path, kind: str | None = None) -> dict[str, Any]:
    """The recipe and options a run was started with (what a resume continues with).

    Checked for shape here (a table with a recipe table and an options table, of `kind`); the
    recipe's values are checked by the recipe class (`Recipe.from_dict`)."""
    path = folder / RUN_FILE
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError) as exc:
        raise UserError(f"{path} is missing or damaged; this run cannot be resumed") from exc
    if not isinstance(info, dict):
        problem = "it is not a JSON object"
    elif kind is not None and info.get("kind", kind) != kind:
        problem = f"it is a run of another kind, {str(info.get('kind'))[:20]!r}"
    elif not isinstance(info.get("recipe"), dict):
        problem = "it holds no recipe"
    elif not isinstance(info.get("options", {}), (dict, type(None))):
        problem = "its options are not a table"
    else:
        return {**info, "options": info.get("options") or {}}
    raise UserError(f"{path} is damaged ({problem}); this run cannot be resumed")


def write_metrics(folder: Path, history: list[dict[str, Any]]) -> None:
    """Rewrites the metrics file from the checkpoint's history: each epoch exactly once."""
    io.write_text(folder / METRICS_FILE, "".join(json.dumps(r) + "\n" for r in history))


def read_metrics(folder: Path) -> list[dict[str, Any]]:
    """The epoch records of a run (none if it has no metrics file); a damaged file is a
    UserError naming its first bad line, never a traceback."""
    path = folder / METRICS_FILE
    if not path.is_file():
        return []
    try:
        lines = path.read_text().splitlines()
    except (OSError, ValueError) as exc:
        raise UserError(f"{path} could not be read ({exc}); it is damaged") from exc
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            record = None
        if not _is_epoch_record(record):
            raise UserError(f"{path} is damaged: line {number} is not an epoch record; "
                            "delete the line (or the file) to go on")
        records.append(record)
    return records


def checkpoint_history(checkpoint: Path, meta: dict[str, Any]) -> list[dict[str, Any]]:
    """The epochs a checkpoint's run recorded: the metrics.jsonl beside it, else the `history`
    a bundled model carries in its metadata (it ships without its run folder), else none. A
    stored history that is not a list of epoch records counts as none."""
    history = read_metrics(checkpoint.parent)
    if history:
        return history
    stored = meta.get("history")
    if isinstance(stored, list) and stored and all(_is_epoch_record(r) for r in stored):
        return stored
    return []


def _is_epoch_record(record: Any) -> bool:
    """{"epoch": N >= 1, "metric": number or null, ...}: what `write_metrics` writes."""
    if not isinstance(record, dict):
        return False
    epoch = record.get("epoch")
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 1:
        return False
    return all(value is None or isinstance(value, (int, float)) for value in record.values())
