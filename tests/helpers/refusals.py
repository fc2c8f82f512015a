"""What the refusal tests share: the one error line a refused command ends with, and a tiny
CNN trained for one epoch through the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
