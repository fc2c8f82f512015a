"""One training process per run folder: a second one on the same run refuses instead of
interleaving checkpoints. The lock is an OS file lock, so it vanishes with a killed process."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Iterator

from fmtool.errors import UserError


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(run_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise UserError(f"cannot write to the run folder {run_dir}: {exc.strerror or exc}; "
                        "choose a writable FMTOOL_HOME") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise UserError(f"run {run_dir.name} is being trained by another process; "
                            "wait for it or choose another --name") from exc
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        yield
    finally:
        os.close(fd)
