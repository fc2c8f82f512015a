"""Where fmtool keeps data sets, caches and runs.

Everything lives in platform directories (platformdirs) unless FMTOOL_HOME is set, in which
case it all moves under that one folder (tests and CI use a temporary directory).
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

from fmtool.errors import UserError

APP = "fmtool"
HOME_ENV = "FMTOOL_HOME"


def _home() -> Path | None:
    """FMTOOL_HOME, refused when it cannot be fmtool's home: relative (it would mean another
    folder in every working directory, and runs made in one would be missing in the next) or
    something other than a folder."""
    value = os.environ.get(HOME_ENV)
    if not value:
        return None
    home = Path(value).expanduser()
    if not home.is_absolute():
        raise UserError(f"{HOME_ENV}={value} is a relative path; set it to an absolute one, such "
                        f"as {Path.cwd() / home}")
    if os.path.lexists(home) and not home.is_dir():
        raise UserError(f"{HOME_ENV}={value} is {what_is(home)}, not a folder; point it at a folder")
    return home


def what_is(path: Path) -> str:
    """What is at `path`, in a few words, for a message that says why it cannot be used."""
    if path.is_symlink() and not path.exists():
        return "a broken symbolic link"
    if not os.path.lexists(path):
        return "missing"
    if path.is_dir():
        return "a folder"
    if path.is_file():
        return "a file"
    kinds = [(stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")]
    mode = path.stat().st_mode
    return next((name for test, name in kinds if test(mode)), "neither a file nor a folder")


def folder_problem(path: Path) -> str:
    """Why `path` cannot be used as a folder: "does not exist" or "is a file", ...)."""
    kind = what_is(path)
    return "does not exist" if kind == "missing" else f"is {kind}, not a folder"


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


MATPLOTLIB_ENV = "MPLCONFIGDIR"


def matplotlib_dir() -> Path:
    """matplotlib's configuration and font cache, kept with fmtool's other caches."""
    return cache_dir() / "matplotlib"


def use_own_matplotlib_dir() -> None:
    """Points matplotlib at `matplotlib_dir` unless the user set MPLCONFIGDIR; only before
    matplotlib loads (it reads the variable once)."""
    if "matplotlib" in sys.modules or os.environ.get(MATPLOTLIB_ENV):
        return
    try:
        os.environ[MATPLOTLIB_ENV] = str(matplotlib_dir())
    except UserError:  # an unusable FMTOOL_HOME: the command says so when it first needs it
        pass
