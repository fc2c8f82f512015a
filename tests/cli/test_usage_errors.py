"""Mistakes click itself finds (a value out of range, a file where a folder goes, an unknown
option or command, a missing argument) end like every other refusal: one `error:` line on
stderr that says what is wrong and where the help is, exit status 2."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from fmtool.cli.app import app

runner = CliRunner()


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder with a file shirt.jpg and an empty folder emptydir, as a user has."""
    (tmp_path / "shirt.jpg").write_bytes(b"not looked at")
    (tmp_path / "emptydir").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("args, line", [
    (["classify", "--top-k", "0", "shirt.jpg"],
     "error: --top-k must be at least 1, got 0; see fmtool classify -h"),
    (["classify", "-k", "11", "shirt.jpg"],
     "error: --top-k must be at most 10, got 11; see fmtool classify -h"),
    (["classify", "--top-k", "two", "shirt.jpg"],
     "error: --top-k must be a whole number, got 'two'; see fmtool classify -h"),
    (["eval", "--limit", "-1"], "error: --limit must be at least 1, got -1; see fmtool eval -h"),
    (["train", "cnn", "--limit", "0"],
     "error: --limit must be an integer of at least 1, got 0; see fmtool train cnn -h"),
    (["train", "vae", "--limit", "1"],
     "error: --limit must be an integer of at least 2, got 1; see fmtool train vae -h"),
    (["project", "--method", "umap"],
     "error: unknown method 'umap'; choose tsne or pca; see fmtool project -h"),
    (["train", "cnn", "--epochs", "0"],
     "error: --epochs must be an integer from 1 to 1000000, got 0; see fmtool train cnn -h"),
    (["eval", "--out", "shirt.jpg"],
     "error: --out: 'shirt.jpg' is a file; give a folder; see fmtool eval -h"),
    (["project", "--out", "emptydir"],
     "error: --out: 'emptydir' is a folder; give a file name; see fmtool project -h"),
    (["classify", "--save-input", "shirt.jpg", "shirt.jpg"],
     "error: --save-input: 'shirt.jpg' is a file; give a folder; see fmtool classify -h"),
    (["classify", "--forse", "shirt.jpg"],
     "error: no such option --forse (did you mean --force?); see fmtool classify -h"),
    (["--bogus"], "error: no such option --bogus; see fmtool -h"),
    (["evl"], "error: no such command 'evl' (did you mean 'eval'?); see fmtool -h"),
    (["train", "gan"], "error: no such command 'gan'; see fmtool train -h"),
    (["classify"], "error: missing argument IMAGES; see fmtool classify -h"),
    (["reconstruct"], "error: missing argument DIR; see fmtool reconstruct -h"),
    (["info", "a.pt", "b.pt"], "error: got unexpected extra argument(s) (b.pt); see fmtool info -h"),
], ids=lambda value: " ".join(value) if isinstance(value, list) else "")
def test_a_usage_error_is_one_line(here: Path, args: list[str], line: str):
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [line]
    assert result.stdout == ""


def test_an_option_without_its_value_is_one_line(here: Path):
    result = runner.invoke(app, ["classify", "shirt.jpg", "-k"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == ["error: option '-k' requires an argument"]


@pytest.mark.parametrize("args", [[], ["train"]], ids=["fmtool", "fmtool train"])
def test_a_group_without_a_command_still_shows_its_help(args: list[str]):
    result = runner.invoke(app, args)
    assert "Usage: fmtool" in result.output and "error:" not in result.output


@pytest.mark.parametrize("args", [["classify", "-h"], ["train", "cnn", "-h"], ["-h"]])
def test_help_shows_flags_without_a_value(args: list[str]):
    """typer would write `--force <bool>`, as if the flag took a value."""
    result = runner.invoke(app, args, terminal_width=100)
    assert result.exit_code == 0
    assert "-h " in result.stdout and "<bool>" not in result.stdout
