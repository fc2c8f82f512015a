"""VAEConfig: what a face VAE is, stored in its checkpoint and rebuilt from it."""

from __future__ import annotations

import pytest

from fmtool.engine.bundled import bundled_checkpoint
from fmtool.engine.checkpoint import load_checkpoint
from fmtool.engine.schema import MetadataError
from fmtool.errors import UserError
from fmtool.vae.config import VAEConfig, checkpoint_meta
from fmtool.vae.recipes import CPU
from tests.helpers.checkpoints import legacy_checkpoint


def test_a_config_survives_its_table_and_the_checkpoint_keeps_it():
    config = VAEConfig.from_recipe(CPU)
    assert config == VAEConfig(image_size=64, latent_dim=256, crop=(224, 250))
    assert VAEConfig.from_dict(config.to_dict()) == config
    assert VAEConfig.from_meta(checkpoint_meta(config, CPU)) == config


@pytest.mark.parametrize("change, message", [
    ({"image_size": 48}, "image_size must be a multiple of 32 from 32 to 512, got 48"),
    ({"crop": [250, 224]}, "crop"),
    ({"crop": [1, 2, 3]}, "crop is \\[1, 2, 3\\], not a list of 2 whole numbers"),
    ({"image_size": 512, "latent_dim": 2048}, "larger than any VAE fmtool trains"),
])
def test_from_dict_refuses_what_fmtool_would_not_have_written(change: dict, message: str):
    with pytest.raises(MetadataError, match=message):
        VAEConfig.from_dict({**VAEConfig().to_dict(), **change})


def test_a_config_table_of_fmtool_0_2_has_the_reports_decoder():
    table = VAEConfig(decoder="upsample").to_dict()
    del table["decoder"]
    assert VAEConfig.from_dict(table).decoder == "transposed"
    with pytest.raises(MetadataError, match="decoder must be transposed or upsample, got 'pixelshuffle'"):
        VAEConfig.from_dict({**table, "decoder": "pixelshuffle"})


@pytest.mark.parametrize("values, message", [
    ({"latent_dim": 0}, "latent_dim must be an integer from 1 to 2048, got 0"),
    ({"image_size": "big"}, "image_size must be a multiple of 32 from 32 to 512, got 'big'"),
    ({"crop": (250, 224)}, "crop must be two whole numbers 0 < keep <= of (keep/of of the "
                           "shorter side), got (250, 224)"),
])
def test_a_config_made_in_python_is_refused_at_once_naming_the_field_and_its_range(
        values: dict, message: str):
    with pytest.raises(UserError) as refused:
        VAEConfig(**values)
    assert str(refused.value) == message


def test_the_older_layout_still_reads():
    shipped_by_0_1 = legacy_checkpoint("vae").meta
    assert "config" not in shipped_by_0_1
    assert VAEConfig.from_meta(shipped_by_0_1) == VAEConfig(image_size=64, latent_dim=256)


def test_the_bundled_vae_stores_the_config_the_cpu_recipe_trains():
    shipped = load_checkpoint(bundled_checkpoint("vae")).meta
    assert VAEConfig.from_dict(shipped["config"]) == VAEConfig.from_recipe(CPU)
