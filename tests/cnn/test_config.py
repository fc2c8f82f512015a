"""CNNConfig: what a CNN is, stored in its checkpoint and rebuilt from it by one strict reader."""

from __future__ import annotations

import pytest

from fmtool.cnn.config import CNNConfig, checkpoint_meta
from fmtool.cnn.recipes import BUNDLED, PAPER
from fmtool.engine.bundled import bundled_checkpoint
from fmtool.engine.checkpoint import load_checkpoint
from fmtool.engine.schema import MetadataError
from fmtool.errors import UserError
from tests.helpers.checkpoints import legacy_checkpoint


def test_a_config_survives_its_table():
    config = CNNConfig.from_recipe(BUNDLED)
    assert CNNConfig.from_dict(config.to_dict()) == config
    assert config.to_dict()["class_names"][1] == "Trouser"  # a list, as JSON stores it


def test_a_recipe_gives_the_network_it_trains():
    config = CNNConfig.from_recipe(PAPER, width=0.25)
    assert (config.variant, config.width, config.scaling, config.tta_flip) == ("code", 0.25, "minmax", False)
    model = config.build()
    assert model.variant == "code" and model.output.out_features == 10


@pytest.mark.parametrize("change, message", [
    ({"depth": 12}, "unknown key 'depth'"),
    ({"width": None}, "width is None, not a number"),
    ({"image_size": 30}, "image_size must be a multiple of 4 from 8 to 256, got 30"),
    ({"variant": "paper"}, "variant must be text or code, got 'paper'"),
    ({"class_names": ["a", "a"]}, "repeat"),
    ({"tta_flip": 1}, "tta_flip is 1, not true or false"),
])
def test_from_dict_refuses_what_fmtool_would_not_have_written(change: dict, message: str):
    with pytest.raises(MetadataError, match=message):
        CNNConfig.from_dict({**CNNConfig().to_dict(), **change})


@pytest.mark.parametrize("values, message", [
    ({"width": -1}, "width must be a number in [0.05, 4], got -1"),
    ({"width": "wide"}, "width must be a number in [0.05, 4], got 'wide'"),
    ({"dropout": 1.5}, "dropout must be a number in [0, 0.95], got 1.5"),
    ({"variant": "paper"}, "variant must be text or code, got 'paper'"),
    ({"tta_flip": "yes"}, "tta_flip must be true or false, got 'yes'"),
    ({"class_names": ["Hat"]}, "class_names names 1 classes; a classifier has 2 to 1000"),
    ({"class_names": ["Hat", "Hat"]}, "class names repeat: 'Hat' is there twice or more"),
])
def test_a_config_made_in_python_is_refused_at_once_naming_the_field_and_its_range(
        values: dict, message: str):
    with pytest.raises(UserError) as refused:
        CNNConfig(**values)
    assert str(refused.value) == message
    assert isinstance(refused.value, ValueError)  # as from_dict's refusals are


def test_a_config_made_in_python_takes_plain_python_values():
    config = CNNConfig(width=1, class_names=["cat", "dog"])
    assert config.width == 1.0 and isinstance(config.width, float)
    assert config.class_names == ("cat", "dog") and config == CNNConfig.from_dict(config.to_dict())


def test_a_table_missing_a_value_is_refused_rather_than_defaulted():
    table = CNNConfig().to_dict()
    del table["width"]
    with pytest.raises(MetadataError, match="lacks width"):
        CNNConfig.from_dict(table)


def test_the_checkpoint_stores_the_config_and_the_older_layout_still_reads():
    meta = checkpoint_meta(CNNConfig(width=0.5), PAPER)
    assert meta["kind"] == "cnn" and CNNConfig.from_meta(meta) == CNNConfig(width=0.5)
    shipped_by_0_1 = legacy_checkpoint("cnn").meta
    assert "config" not in shipped_by_0_1  # written before configs existed
    assert CNNConfig.from_meta(shipped_by_0_1) == CNNConfig(width=0.375, image_size=32,
                                                             dropout=0.2, tta_flip=True)


def test_the_bundled_model_stores_the_config_the_bundled_recipe_trains():
    shipped = load_checkpoint(bundled_checkpoint("cnn")).meta
    assert CNNConfig.from_dict(shipped["config"]) == CNNConfig.from_recipe(BUNDLED)
