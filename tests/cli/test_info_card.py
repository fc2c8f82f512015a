"""`fmtool info CHECKPOINT`: a model's card, with every recipe value it was trained with."""

import json
from dataclasses import fields
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fmtool.cli.app import app
from fmtool.cnn.recipes import RECIPES as CNN_RECIPES
from fmtool.engine.bundled import bundled_checkpoint
from tests.helpers.checkpoints import save_cnn

runner = CliRunner()
CPU = CNN_RECIPES["cpu"]


def card_rows(text: str) -> dict[str, str]:
    """`key   value` lines as a table."""
    return {key: value.strip() for key, _, value in (line.partition(" ") for line in
                                                      text.splitlines())}


def test_a_runs_card_lists_every_recipe_value(tmp_path: Path):
    save_cnn(tmp_path / "run" / "best.pt", recipe=CPU, epoch=3)
    result = runner.invoke(app, ["info", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    rows = card_rows(result.stdout)
    assert rows["checkpoint"] == str(tmp_path / "run" / "best.pt")
    assert rows["kind"] == "cnn" and rows["epoch"] == "3"
    recipe = dict(item.split("=", 1) for item in rows["recipe"].split(", ") if "=" in item)
    missing = [f.name for f in fields(CPU) if f.name != "description" and f.name not in recipe]
    assert not missing
    assert recipe["name"] == "cpu" and recipe["epochs"] == str(CPU.epochs)
    assert recipe["image_size"] == str(CPU.image_size)


def test_the_json_card_is_the_checkpoints_own_tables(tmp_path: Path):
    save_cnn(tmp_path / "c.pt", recipe=CPU)
    result = runner.invoke(app, ["info", str(tmp_path / "c.pt"), "--json"])
    card = json.loads(result.stdout)
    assert card["recipe"] == CPU.to_dict() and card["config"]["width"] == 0.0625


def test_the_bundled_models_card_shows_its_measured_figures():
    path = bundled_checkpoint("cnn")
    result = runner.invoke(app, ["info", str(path)])
    assert result.exit_code == 0
    rows = card_rows(result.stdout)
    assert rows["card.command"].startswith("fmtool train cnn --recipe ")
    assert "test_accuracy=" in rows["card.metrics"] and "photo_accuracy=" in rows["card.metrics"]


def test_builtin_shows_the_card_of_each_bundled_model():
    result = runner.invoke(app, ["info", "builtin", "--json"])
    assert result.exit_code == 0, result.output
    cards = json.loads(result.stdout)
    assert list(cards) == ["cnn", "vae"]
    for kind, card in cards.items():
        assert card["checkpoint"] == str(bundled_checkpoint(kind)) and card["kind"] == kind
        assert card["card"]["command"].startswith(f"fmtool train {kind} --recipe ")


def test_builtin_beside_a_local_builtin_folder_is_refused(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "builtin").mkdir()
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["info", "builtin"])
    assert result.exit_code != 0
    assert "there is also ./builtin here" in result.output


def test_a_missing_checkpoint_is_one_line_and_exit_2(tmp_path: Path):
    result = runner.invoke(app, ["info", str(tmp_path / "none.pt")])
    assert result.exit_code != 0
    assert result.output.strip().splitlines() == [
        f"error: checkpoint {tmp_path / 'none.pt'} does not exist; give a .pt file or a run folder"]


@pytest.mark.parametrize("command", ["info", "export"])
def test_a_folder_without_a_checkpoint_gets_advice_for_either_kind(command: str, tmp_path: Path):
    """info and export take a CNN or a VAE: no advice to train one of them."""
    (tmp_path / "empty").mkdir()
    result = runner.invoke(app, [command, str(tmp_path / "empty")])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"error: {tmp_path / 'empty'} holds no checkpoint (best.pt or last.pt); give a .pt file "
        "or a run folder"]
