"""A write that fails says why and what to do about that reason, naming the option at fault: a
full disk asks for space or another place, a folder one may not write to (permissions, a
read-only file system) only for another place. (Tests run as root, so the failures are
simulated where fmtool creates its files.)"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from fmtool.cli.app import app
from fmtool.engine.io import write_failure
from tests.helpers.checkpoints import save_cnn

pytestmark = pytest.mark.usefixtures("one_thread")
runner = CliRunner()


def failing_creates(monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    """Every file fmtool creates from now on fails with `code`."""
    def mkstemp(*args: object, **kwargs: object):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)


@pytest.mark.parametrize("code, advice", [
    (errno.EACCES, "choose another --save-input in a folder you can write to"),
    (errno.EROFS, "choose another --save-input in a folder you can write to"),
    (errno.ENOSPC, "free some space or choose another --save-input"),
])
def test_classify_save_input(code: int, advice: str, tmp_path: Path,
                             monkeypatch: pytest.MonkeyPatch):
    checkpoint = save_cnn(tmp_path / "c.pt")
    Image.new("L", (28, 28)).save(tmp_path / "shirt.png")
    failing_creates(monkeypatch, code)
    result = runner.invoke(app, ["classify", str(tmp_path / "shirt.png"), "--checkpoint",
                                 str(checkpoint), "--save-input", str(tmp_path / "seen")])
    assert result.exit_code == 2, result.output
    assert result.stderr == (f"error: could not write {tmp_path}/seen/0001_shirt.png: "
                             f"{os.strerror(code)}; {advice}\n")


def test_a_save_input_folder_that_cannot_be_written_names_save_input(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch):
    from fmtool.engine import io

    def refused(folder: Path) -> None:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(io, "_probe_write", refused)  # the check before any work
    checkpoint = save_cnn(tmp_path / "c.pt")
    Image.new("L", (28, 28)).save(tmp_path / "shirt.png")
    result = runner.invoke(app, ["classify", str(tmp_path / "shirt.png"), "--checkpoint",
                                 str(checkpoint), "--save-input", str(tmp_path / "seen")])
    assert result.exit_code == 2, result.output
    assert result.stderr == (f"error: could not write into {tmp_path}: Permission denied; "
                             "choose another --save-input in a folder you can write to\n")


@pytest.mark.parametrize("code, advice", [
    (errno.EACCES, "choose another --out in a folder you can write to"),
    (errno.EDQUOT, "free some space or choose another --out"),
])
def test_export_names_out_not_fmtool_home(code: int, advice: str, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch):
    failing_creates(monkeypatch, code)
    out = tmp_path / "ro" / "cnn.pt"
    result = runner.invoke(app, ["export", "--format", "torchscript", "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines()[-1] == (
        f"error: could not write exported model {out}: {os.strerror(code)}; {advice}")


@pytest.mark.parametrize("code, advice", [
    (errno.EPERM, "choose another FMTOOL_HOME in a folder you can write to"),
    (errno.ENOSPC, "free some space or choose another FMTOOL_HOME"),
    (errno.EIO, "choose another FMTOOL_HOME"),  # neither room nor rights: another place may do
])
def test_the_advice_fits_the_reason(code: int, advice: str):
    failure = write_failure(Path("runs/r/last.pt"), OSError(code, os.strerror(code)), "checkpoint")
    assert str(failure) == f"could not write checkpoint runs/r/last.pt: {os.strerror(code)}; {advice}"
