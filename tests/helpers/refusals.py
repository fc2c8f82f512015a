"""What the refusal tests share: the one error line a refused command ends with, and a tiny
CNN trained for one epoch through the command line, as the fixture `cnn_run` (tests/conftest.py
loads this module as a plugin, so every test can ask for it by name).

Every refusal is one `error:` line on stderr that names the file or the flag, exit status 2.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fmtool.cli.app import app
from tests.helpers.fashion import synthetic_fashion

runner = CliRunner()
WIDTH = 0.0625
TINY_CNN = ["--recipe", "paper", "--width", str(WIDTH), "--batch-size", "16", "--precision", "fp32", "--device", "cpu",
            "--val-size", "0"]


def final_error(result: Any) -> str:
    """The one error line, which ends stderr (train commands log their set-up before it)."""
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert [line for line in lines if line.startswith("error:")] == lines[-1:], result.stderr
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return lines[-1]


def make_cnn_run(root: Path) -> dict:
    """A tiny CNN trained for one epoch through the command line (run folder and data)."""
    data = synthetic_fashion(root / "fashion", train=96, test=40)
    env = {"FMTOOL_HOME": str(root / "home")}
    result = runner.invoke(app, ["train", "cnn", "--data-dir", str(data), "--epochs", "1",
                                 "--name", "r", *TINY_CNN], env=env)
    assert result.exit_code == 0, result.output
    return {"data": data, "home": root / "home", "run": root / "home/data/runs/cnn/r"}


@pytest.fixture(scope="session")
def trained_cnn_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One training for the whole session (per xdist worker); tests use `cnn_run`'s copies."""
    return make_cnn_run(tmp_path_factory.mktemp("cnn-run"))


@pytest.fixture(scope="module")
def cnn_run(trained_cnn_run: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """`make_cnn_run`'s run, copied for each module: commands such as `project` write into the
    run folder, and what one module writes must not reach another."""
    home = tmp_path_factory.mktemp("cnn-run-copy") / "home"
    shutil.copytree(trained_cnn_run["home"], home)
    return {**trained_cnn_run, "home": home, "run": home / trained_cnn_run["run"].relative_to(
        trained_cnn_run["home"])}
