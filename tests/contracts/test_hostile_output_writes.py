"""Hostile output, part one: where results go, through the real commands.

Every write of reconstruct, fuse, eval and project either completes or leaves no new file, with
one line on stderr; nothing is overwritten without --force (eval and project included), nothing
is written through a symbolic link inside the output folder; printed names are escaped, never
read as rich markup or emoji codes; --json is strict JSON; odd checkpoints are named for what
they are. (Tests run as root, so a read-only folder and a full disk are simulated by making the
system calls fail.)
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fmtool.cli.app import app
from tests.helpers import output as shared
from tests.helpers.output import (
    COMMANDS,
    OUT_IS_FOLDER,
    _eval,
    _project,
    files_under,
    no_temporary_files,
    one_error_line,
    outputs_of,
)

# fixtures, asked for by name (ctx asks for the other three)
ctx, faces, fashion, vae = shared.ctx, shared.faces, shared.fashion, shared.vae
runner = CliRunner()
pytestmark = pytest.mark.usefixtures("one_thread")


# -- 1. output writes -----------------------------------------------------------------------

def count_work(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records each start of a command's real work (evaluating, loading data, reconstructing,
    fusing), still doing it."""
    import fmtool.cnn.evaluate
    import fmtool.data.fashion
    import fmtool.vae.fuse
    import fmtool.vae.reconstruct

    work: list[str] = []
    for module, name in [(fmtool.cnn.evaluate, "evaluate_model"),
                         (fmtool.data.fashion, "load_fashion_mnist"),
                         (fmtool.vae.reconstruct, "reconstruct"), (fmtool.vae.fuse, "encode")]:
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, real=real, name=name, **k: (
            work.append(name), real(*a, **k))[1])
    return work


def _file_in_the_way(tmp: Path, command: str, case: str) -> tuple[Path, Path]:
    """(the --out to give, the path the message must name)."""
    blocker = tmp / "blocker"
    blocker.write_text("a file the user keeps")
    name = "result" if OUT_IS_FOLDER[command] else "result.png"
    if case == "out's parent is a file":
        return blocker / name, blocker
    if case == "out's grand-parent is a file":
        return blocker / "deeper" / name, blocker
    if case == "out is a file where a folder goes":
        return blocker, blocker
    if case == "a sub-folder fmtool makes is a file":
        if command == "reconstruct":
            (tmp / "result").mkdir()
            (tmp / "result" / "images").write_text("in the way")
            return tmp / "result", tmp / "result" / "images"
        (tmp / "result_frames").write_text("in the way")
        return tmp / "result.png", tmp / "result_frames"
    if case == "an output file's name is a folder":
        target = {"reconstruct": tmp / "result" / "metrics.csv",
                  "eval": tmp / "result" / "confusion_matrix.png",
                  "fuse": tmp / "result.png", "project": tmp / "result.csv"}[command]
        target.mkdir(parents=True)
        return tmp / name, target
    raise AssertionError(case)


FILE_IN_THE_WAY = [
    *[(command, case) for command in COMMANDS
      for case in ("out's parent is a file", "out's grand-parent is a file",
                   "an output file's name is a folder")],
    ("reconstruct", "out is a file where a folder goes"),
    ("fuse", "out is a file where a folder goes"),
    ("reconstruct", "a sub-folder fmtool makes is a file"),
    ("fuse", "a sub-folder fmtool makes is a file"),
]


@pytest.mark.parametrize("command,case", FILE_IN_THE_WAY)
def test_a_file_or_folder_in_the_way_is_one_line_before_any_work(
        command: str, case: str, ctx: dict, monkeypatch: pytest.MonkeyPatch):
    tmp = ctx["tmp"] / "place"
    tmp.mkdir()
    out, named = _file_in_the_way(tmp, command, case)  # fuse: "blocker" names a folder
    before = {p: p.read_bytes() for p in files_under(tmp)}
    work = count_work(monkeypatch)
    result = runner.invoke(app, COMMANDS[command](ctx, out))
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert str(named) in line and ("folder" in line or "file" in line), line
    assert not work, "the command did its work before refusing"
    assert {p: p.read_bytes() for p in files_under(tmp)} == before
    no_temporary_files(ctx["tmp"])


def unwritable(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """No file can be made in `folder`, as in a folder of someone else's (as root, permission
    bits do not stop a write, so the system call is made to fail as it would)."""
    real_open = os.open

    def refusing_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & os.O_CREAT and Path(path).parent == folder:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refusing_open)


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("given", ["in it", "in a new folder in it"])
def test_a_folder_that_cannot_be_written_is_one_line_before_any_work(
        command: str, given: str, ctx: dict, monkeypatch: pytest.MonkeyPatch):
    """`--out ro` (a folder the user cannot write) or `--out ro/new/...`: refused before the command
    evaluates, reconstructs or fuses anything, not when its first file is written."""
    locked = ctx["tmp"] / "ro"
    locked.mkdir()
    name = "result" if OUT_IS_FOLDER[command] else "result.png"
    if given == "in it":
        out = locked if OUT_IS_FOLDER[command] else locked / name
    else:
        out = locked / "new" / name
    unwritable(monkeypatch, locked)
    work = count_work(monkeypatch)
    result = runner.invoke(app, COMMANDS[command](ctx, out))
    assert result.exit_code == 2, result.output
    assert one_error_line(result) == (f"error: could not write into {locked}: Permission denied; "
                                      "choose another --out in a folder you can write to")
    assert not work, "the command did its work before refusing"
    assert list(locked.iterdir()) == []


class Faults:
    """Makes the k-th output file fail: no space while writing it, a read-only file system when
    creating it, or an I/O error when renaming (or, without --force, linking) it into place."""

    REASONS = {"disk full": "No space left on device", "read-only": "Read-only file system",
               "rename fails": "Input/output error"}
    # What each asks of the user: room, or a place to write; --out is the option at fault.
    ADVICE = {"disk full": "; free some space or choose another --out",
              "read-only": "; choose another --out in a folder you can write to",
              "rename fails": "; choose another --out"}

    def __init__(self, monkeypatch: pytest.MonkeyPatch, kind: str, at: int) -> None:
        self.kind, self.at = kind, at
        self.temps = self.renames = 0
        self.full: set[int] = set()
        real_mkstemp, real_write, real_replace = tempfile.mkstemp, os.write, os.replace
        real_link = os.link

        def mkstemp(*args: Any, **kwargs: Any):
            self.temps += 1
            if kind == "read-only" and self.temps >= at:
                raise OSError(errno.EROFS, os.strerror(errno.EROFS))
            fd, name = real_mkstemp(*args, **kwargs)
            if kind == "disk full" and self.temps >= at:
                self.full.add(fd)
            return fd, name

        def write(fd: int, data: Any) -> int:
            if fd in self.full:
                self.full.discard(fd)
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real_write(fd, data)

        def replace(source: Any, target: Any) -> None:
            self.renames += 1
            if kind == "rename fails" and self.renames >= at:
                raise OSError(errno.EIO, os.strerror(errno.EIO))
            real_replace(source, target)

        def link(source: Any, target: Any, **options: Any) -> None:
            self.renames += 1
            if kind == "rename fails" and self.renames >= at:
                raise OSError(errno.EIO, os.strerror(errno.EIO))
            real_link(source, target, **options)

        monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
        monkeypatch.setattr(os, "link", link)
        monkeypatch.setattr(os, "write", write)
        monkeypatch.setattr(os, "replace", replace)


@pytest.mark.parametrize("kind", ["disk full", "read-only", "rename fails"])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_failure_part_way_leaves_no_output_at_all(command: str, kind: str, ctx: dict,
                                                    monkeypatch: pytest.MonkeyPatch):
    place = ctx["tmp"] / "outputs"
    out = place / ("result" if OUT_IS_FOLDER[command] else "result.png")
    Faults(monkeypatch, kind, at=2)  # the first file is done (or kept back) when the second fails
    result = runner.invoke(app, COMMANDS[command](ctx, out))
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert line.startswith("error: could not write ") and Faults.REASONS[kind] in line, line
    assert line.endswith(Faults.ADVICE[kind]), line
    assert not place.exists(), files_under(place)  # nothing, not even the folders it made
    no_temporary_files(ctx["tmp"])


@pytest.mark.parametrize("kind", ["disk full", "read-only"])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_failed_forced_rewrite_keeps_the_old_files(command: str, kind: str, ctx: dict,
                                                     monkeypatch: pytest.MonkeyPatch):
    out = ctx["tmp"] / "outputs" / ("result" if OUT_IS_FOLDER[command] else "result.png")
    first = runner.invoke(app, COMMANDS[command](ctx, out))
    assert first.exit_code == 0, first.output
    before = {p: p.read_bytes() for root in outputs_of(command, out) for p in
              ([root] if root.is_file() else files_under(root))}
    assert len(before) >= 2
    Faults(monkeypatch, kind, at=2)
    result = runner.invoke(app, COMMANDS[command](ctx, out, "--force"))
    assert result.exit_code == 2, result.output
    one_error_line(result)
    after = {p: p.read_bytes() for root in outputs_of(command, out) for p in
             ([root] if root.is_file() else files_under(root))}
    assert after == before
    no_temporary_files(ctx["tmp"])


def _copy_outside_runs(ctx: dict) -> Path:
    """The run's checkpoint kept in a folder of the user's (outside fmtool's runs folder)."""
    folder = ctx["tmp"] / "my models"
    folder.mkdir()
    target = folder / "tiny.pt"
    target.write_bytes((ctx["run"] / "best.pt").read_bytes())
    return target


OVERWRITE_CASES = {
    # name: (args without --force, the user's file that must survive without --force)
    "eval --out DIR holding a figure": lambda c: (
        _eval(c, c["tmp"] / "figs"), c["tmp"] / "figs" / "confusion_matrix.png"),
    "eval --out DIR holding a curve only": lambda c: (
        _eval(c, c["tmp"] / "figs"), c["tmp"] / "figs" / "accuracy_curve.png"),
    "eval of a checkpoint kept outside the runs folder": lambda c: (
        ["eval", str(_copy_outside_runs(c)), "--data-dir", str(c["fashion"]), "--device", "cpu"],
        c["tmp"] / "my models" / "confusion_matrix.png"),
    "project --out FILE that exists": lambda c: (
        _project(c, c["tmp"] / "mine.png"), c["tmp"] / "mine.png"),
    "project --out FILE whose CSV exists": lambda c: (
        _project(c, c["tmp"] / "mine.svg"), c["tmp"] / "mine.csv"),
    "project default name beside a checkpoint outside the runs folder": lambda c: (
        ["project", "--checkpoint", str(_copy_outside_runs(c)), "--data-dir", str(c["fashion"]),
         "--method", "pca", "--per-class", "2", "--layer", "output", "--device", "cpu"],
        c["tmp"] / "my models" / "projection-pca-output.csv"),
}


@pytest.mark.parametrize("case", list(OVERWRITE_CASES))
def test_eval_and_project_never_overwrite_a_users_file_without_force(
        case: str, ctx: dict, monkeypatch: pytest.MonkeyPatch):
    args, users = OVERWRITE_CASES[case](ctx)
    users.parent.mkdir(parents=True, exist_ok=True)
    users.write_bytes(b"the user's own file")
    work = count_work(monkeypatch)
    refused = runner.invoke(app, args)
    assert refused.exit_code == 2, refused.output
    line = one_error_line(refused)
    assert str(users) in line and "--force" in line, line
    assert users.read_bytes() == b"the user's own file" and not work
    forced = runner.invoke(app, [*args, "--force"])
    assert forced.exit_code == 0, forced.output
    assert users.read_bytes() != b"the user's own file"
    no_temporary_files(ctx["tmp"])


@pytest.mark.parametrize("command", ["eval", "project"])
def test_eval_and_project_rewrite_their_own_figures_in_a_run_folder(command: str, ctx: dict):
    args = (["eval", str(ctx["run"]), "--data-dir", str(ctx["fashion"]), "--device", "cpu"]
            if command == "eval" else
            ["project", "--checkpoint", str(ctx["run"]), "--data-dir", str(ctx["fashion"]),
             "--method", "pca", "--per-class", "2", "--layer", "output", "--device", "cpu"])
    for _ in range(2):
        result = runner.invoke(app, [*args, "--json"])
        assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    written = list(report["figures"].values()) if command == "eval" else [report["figure"],
                                                                         report["csv"]]
    assert all(Path(p).parent == ctx["run"] and Path(p).is_file() for p in written)
