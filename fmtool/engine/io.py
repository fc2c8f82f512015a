"""Atomic file writes: a file appears whole or not at all, and a failed write says why in a line.

Every file fmtool writes (checkpoints, run.json, metrics, figures, images, CSVs, caches) goes
through `atomic_write`: the content goes to a temporary file in the target's folder, is synced,
and is renamed over the target. A crash, Ctrl-C or a full disk leaves the old file (or none),
never half of a new one. A rename replaces a symbolic link at the target itself; nothing is ever
written through one.

Commands that write several files (reconstruct, fuse, eval, project) also wrap them in
`all_or_nothing`: the files are kept back as synced temporary files until the block ends, then
renamed in one go, so a failure part-way (a full disk, a read-only folder, Ctrl-C) leaves no new
output at all, and `check_outputs` refuses, before any work, outputs that exist or cannot be
written (in a folder where no file can be made, say).
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import fcntl
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

from fmtool.errors import Option, UserError

# A failed write's advice names where else to write ("choose another {}" and the option at
# fault); `write_failure` adds to it what the error asks for. Files under FMTOOL_HOME (runs,
# caches) are the default.
DEFAULT_ADVICE = "choose another FMTOOL_HOME"
_NO_SPACE = {errno.ENOSPC, errno.EDQUOT}  # freeing space is a remedy
_NOT_ALLOWED = {errno.EACCES, errno.EPERM, errno.EROFS}  # only another place is
# Temporary files are named .fmtool-<pid>-<random>.tmp: their length does not depend on the
# target's name (a long legal name would otherwise make a name too long to create), and the pid
# tells a leftover of a killed process (SIGKILL, power loss) from the file of a live one.
STAGING_PREFIX = ".fmtool-"
_STAGING_NAME = re.compile(r"^\.fmtool-(\d+)-[A-Za-z0-9_]+\.tmp$")


def write_failure(path: Path, error: BaseException, what: str = "",
                  advice: str = DEFAULT_ADVICE, *values: object) -> UserError:
    """The one message for a write that failed: `could not write [what ]PATH: reason; advice`,
    the advice fitted to the reason: a full disk adds "free some space or", a folder that may
    not be written (permissions, a read-only file system) asks for a place one can write to."""
    reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
    code = getattr(error, "errno", None)
    if code in _NO_SPACE:
        advice = f"free some space or {advice}"
    elif code in _NOT_ALLOWED:
        advice = f"{advice} in a folder you can write to"
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
    `write_failure` UserError; the temporary file is removed whatever happens. Inside an
    `all_or_nothing` block the rename waits for the end of the block (and its advice is used).
    """
    staging = _STAGING.get()
    if staging is not None and advice == DEFAULT_ADVICE and not values:
        advice, values = staging.advice, staging.values
    tmp: str | None = None
    sink: FileSink | None = None
    try:
        if staging is not None:
            staging.make_folders(path)
        else:
            make_folders(path.parent)
        _sweep(path.parent)
        fd, tmp = tempfile.mkstemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", suffix=".tmp",
                                   dir=path.parent)
        try:
            sink = FileSink(fd)
            yield sink
            os.fsync(fd)
            os.fchmod(fd, _file_mode())
        finally:
            os.close(fd)
        if staging is not None:
            staging.keep(tmp, path)
        else:
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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, run by someone else
        return True
    return True


def remove_leftovers(folder: Path) -> int:
    """Removes the temporary files that processes no longer running left in `folder` (see
    STAGING_PREFIX); returns how many. Files of live processes, this one included, stay."""
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        match = _STAGING_NAME.match(entry.name)
        if match is None or int(match.group(1)) == os.getpid() or _alive(int(match.group(1))):
            continue
        with contextlib.suppress(OSError):
            os.unlink(entry.path)
            removed += 1
    return removed


_SWEPT: set[Path] = set()  # folders this process has cleared of leftovers already


def _sweep(folder: Path) -> None:
    """`remove_leftovers` once per folder and process: the first write into a folder clears
    what an earlier killed run left there, later writes cost nothing."""
    if folder not in _SWEPT:
        _SWEPT.add(folder)
        remove_leftovers(folder)


def make_folders(folder: Path) -> list[Path]:
    """mkdir -p that says which path is in the way ("out is not a folder") instead of a bare
    "File exists"; returns the folders it created, outermost first."""
    missing: list[Path] = []
    probe = folder
    while not probe.is_dir():
        if os.path.lexists(probe):
            raise NotADirectoryError(errno.ENOTDIR, f"{probe} is not a folder")
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    created: list[Path] = []
    for path in reversed(missing):
        try:
            os.mkdir(path)
            created.append(path)
        except FileExistsError:
            if not path.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, f"{path} is not a folder") from None
    return created


class _Staging:
    """The files of one `all_or_nothing` block: synced temporary files waiting to be renamed."""

    def __init__(self, root: Path | None, advice: str, values: tuple[object, ...],
                 overwrite: bool = True) -> None:
        self.root = root
        self.advice = advice
        self.values = values
        self.overwrite = overwrite
        self.kept: list[tuple[str, Path, bool]] = []  # (temporary file, target, target existed)
        self.created: list[Path] = []  # folders this block made, outermost first

    def make_folders(self, path: Path) -> None:
        if self.root is not None:
            _refuse_links_below(self.root, path)
        self.created += make_folders(path.parent)

    def lock(self, root: Path) -> int:
        """Holds `root` for this block: a second writer into it refuses instead of mixing its
        files with these (the lock is the folder's own, so it leaves no file behind)."""
        self.created += make_folders(root)
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise UserError("{} is being written by another fmtool command; wait for it to end "
                            "or choose another {}", root, Option("out")) from None
        return fd

    def _place(self, tmp: str, target: Path) -> None:
        """Renames `tmp` to `target`; without `overwrite` only if `target` still does not exist,
        checked and done in one step (a hard link fails if the name is taken), so a file that
        another process made meanwhile is never replaced."""
        if self.overwrite:
            os.replace(tmp, target)
            return
        try:
            os.link(tmp, target, follow_symlinks=False)
        except FileExistsError:
            raise UserError("{} appeared while fmtool worked (another command wrote it); nothing "
                            "was written; add {} to overwrite it, or choose another {}", target,
                            Option("force"), Option("out")) from None
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
                raise
            if os.path.lexists(target):  # a file system without hard links: check, then rename
                raise FileExistsError(errno.EEXIST, "appeared while fmtool worked") from exc
            os.replace(tmp, target)
            return
        os.unlink(tmp)

    def keep(self, tmp: str, path: Path) -> None:
        self.kept.append((tmp, path, os.path.lexists(path)))

    def commit(self) -> None:
        """Renames every kept file into place. If one fails (or Ctrl-C comes), the new files
        already renamed are removed again; files it replaced (with --force) stay replaced, each
        whole, since the old ones are gone by then."""
        done: list[tuple[Path, bool]] = []
        target: Path | None = None
        try:
            for index, (tmp, target, existed) in enumerate(self.kept):
                self._place(tmp, target)
                self.kept[index] = ("", target, existed)
                done.append((target, existed))
        except BaseException as exc:
            for path, existed in done:
                if not existed:
                    path.unlink(missing_ok=True)
            self.discard()
            if isinstance(exc, OSError) and target is not None:
                raise write_failure(target, exc, "", self.advice, *self.values) from exc
            raise

    def discard(self) -> None:
        for tmp, _, _ in self.kept:
            if tmp:
                Path(tmp).unlink(missing_ok=True)
        self.kept = []
        for folder in reversed(self.created):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if empty: what was there before stays
        self.created = []


_STAGING: contextvars.ContextVar[_Staging | None] = contextvars.ContextVar("fmtool_staging",
                                                                          default=None)


@contextlib.contextmanager
def all_or_nothing(root: Path | None = None, advice: str = DEFAULT_ADVICE, *values: object,
                   overwrite: bool = True, exclusive: bool = False) -> Iterator[None]:
    """Every `atomic_write` in the block becomes visible together when the block ends cleanly.

    If anything fails first (a write, an exception, Ctrl-C), no new file appears, and folders the
    block created are removed again when empty. With `root`, writing through a symbolic link in a
    folder below `root` is refused (the link would put the file outside it). `advice` (with its
    placeholder `values`) ends the message of a write that failed in the block.

    Without `overwrite` a file is only created, never replaced: one that another process made
    after `check_outputs` makes the block fail as a whole. With `exclusive` the block holds
    `root` (which needs it) from start to end, and a second such block on it refuses at once.
    Temporary files that killed processes left in the folders the block writes are removed.

    Inside another block it joins that one: its files appear when the outer block ends, so a
    job made of several commands' outputs (`fmtool report`) is all or nothing as a whole.
    """
    if _STAGING.get() is not None:
        yield
        return
    staging = _Staging(root, advice, values, overwrite)
    token = _STAGING.set(staging)
    held: int | None = None
    try:
        if exclusive and root is not None:
            try:
                held = staging.lock(root)
            except OSError as exc:
                raise write_failure(root, exc, "", advice, *values) from exc
        yield
        staging.commit()
    except BaseException:
        staging.discard()
        raise
    finally:
        _STAGING.reset(token)
        if held is not None:
            os.close(held)


def _refuse_links_below(root: Path, path: Path, option: str = "out") -> None:
    """A symbolic link in a folder between `root` and `path` would take the write elsewhere."""
    for folder in _folders_between(root, path):
        if folder.is_symlink():
            raise UserError("{} is a symbolic link; fmtool does not write through links inside "
                            "its output folder; remove it or choose another {}", folder,
                            Option(option))


def _folders_between(root: Path, path: Path) -> list[Path]:
    """The folders below `root` that hold `path`, outermost first (none when it is outside)."""
    try:
        relative = path.parent.relative_to(root)
    except ValueError:
        return []
    return [root.joinpath(*relative.parts[:i]) for i in range(1, len(relative.parts) + 1)]


def check_outputs(paths: Iterable[Path], root: Path, force: bool, option: str = "out") -> None:
    """Refuses, before any work is done, outputs that must not or cannot be written.

    `root` is the folder the outputs go into (the user's `--out`, or a folder beside it);
    `option` is the parameter that named them, which the messages ask to change (a Python call
    names its own, e.g. `CNN.export`'s path). Refused whatever `force` says: a file where `root`
    or a folder below it should be, a folder in which no file can be made (`root`, or the folder
    it would be made in), a symbolic link below `root` (see `all_or_nothing`), an output that is
    a folder. Refused without `force`: an
    output that exists (a link counts, even a dangling one).
    """
    paths = list(paths)
    probe = root
    while not os.path.lexists(probe) and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        raise UserError("{} is not a folder; choose another {}", probe, Option(option))
    try:
        _probe_write(probe)
    except OSError as exc:
        raise write_failure(probe, exc, "into", "choose another {}", Option(option)) from exc
    existing: list[Path] = []
    for path in paths:
        _refuse_links_below(root, path, option)
        for folder in _folders_between(root, path):
            if os.path.lexists(folder) and not folder.is_dir():
                raise UserError("{} is a file where fmtool needs a folder; choose another {}",
                                folder, Option(option))
        if path.is_dir() and not path.is_symlink():
            raise UserError("{} is a folder; fmtool would write a file there; choose another {}",
                            path, Option(option))
        if os.path.lexists(path):
            existing.append(path)
    if existing and not force:
        if len(existing) == 1:
            raise UserError("{} already exists; add {} to overwrite it, or choose another {}",
                            existing[0], Option("force"), Option(option))
        raise UserError("{} output files already exist in {} (first: {}); add {} to overwrite "
                        "them, or choose another {}", len(existing), root, existing[0],
                        Option("force"), Option(option))


def _probe_write(folder: Path) -> None:
    """Makes and removes an empty file in `folder`: the one sure test that files can be made
    there (permission bits, a read-only mount, ACLs and root's rights all count). It is named as
    a temporary file, so a kill in between leaves nothing `remove_leftovers` keeps."""
    path = folder / f"{STAGING_PREFIX}{os.getpid()}-probe{os.urandom(4).hex()}.tmp"
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    os.unlink(path)


def write_text(path: Path, text: str, what: str = "", advice: str = DEFAULT_ADVICE,
               *values: object) -> Path:
    with atomic_write(path, what, advice, *values) as sink:
        sink.write(text.encode("utf-8"))
    return path
