"""Atomic file writes: a file appears whole or not at all, and a failed write says why in a line.

Every file fmtool writes (checkpoints, run.json, metrics, figures, images, CSVs, caches) goes
through `atomic_write`: the content goes to a temporary file in the target's folder, is synced,
and is renamed over the target. A crash, Ctrl-C or a full disk leaves the old file (or none),
never half of a new one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

from fmtool.errors import UserError

DEFAULT_ADVICE = "free some space or choose a writable FMTOOL_HOME"


def write_failure(path: Path, error: BaseException, what: str = "",
                  advice: str = DEFAULT_ADVICE, *values: object) -> UserError:
    """The one message for a write that failed: `could not write [what ]PATH: reason; advice`."""
    reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
    label = f"{what} " if what else ""
    if values:  # the advice has placeholders: braces in the path must survive formatting
        path_text, reason = _escape(str(path)), _escape(reason)
    else:
        path_text = str(path)
    return UserError(f"could not write {label}{path_text}: {reason}; {advice}", *values)


def _escape(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


class FileSink:
    """A write-only binary file over a descriptor that keeps the OSError of a failed write.

    torch.save reports a failed write as an opaque RuntimeError ("unexpected pos ..."), and some
    writers ignore a short write on a full disk; os.write in a loop raises ENOSPC/EFBIG, and
    keeping it lets the caller say what went wrong.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.error: OSError | None = None
        self.written = 0

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        size = len(view)
        try:
            while view:
                view = view[os.write(self.fd, view):]
        except OSError as exc:
            self.error = exc
            raise
        self.written += size
        return size

    def tell(self) -> int:
        return self.written

    def flush(self) -> None:
        pass


def _file_mode() -> int:
    """rw for whom the umask allows (mkstemp alone would leave files private, 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_write(path: Path, what: str = "", advice: str = DEFAULT_ADVICE,
                 *values: object) -> Iterator[FileSink]:
    """Yields a binary sink; on a clean exit its bytes replace `path` in one rename.

    Any OSError (no space, read-only folder, a file where a folder should be) becomes the one-line
    `write_failure` UserError; the temporary file is removed whatever happens.
    """
    tmp: str | None = None
    sink: FileSink | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            sink = FileSink(fd)
            yield sink
            os.fsync(fd)
            os.fchmod(fd, _file_mode())
        finally:
            os.close(fd)
        os.replace(tmp, path)
        tmp = None
    except BaseException as exc:
        error = sink.error if sink is not None and sink.error is not None else exc
        if isinstance(error, OSError):
            raise write_failure(path, error, what, advice, *values) from exc
        raise
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def write_text(path: Path, text: str, what: str = "", advice: str = DEFAULT_ADVICE,
               *values: object) -> Path:
    with atomic_write(path, what, advice, *values) as sink:
        sink.write(text.encode("utf-8"))
    return path
