"""What a trained face VAE is: its face size, latent size and the crop its faces were cut
with, as one typed config that its checkpoint stores and fmtool rebuilds the network from.

`VAEConfig.from_meta` is the one reader of a VAE checkpoint's description; it rejects unknown
keys and out-of-range values, and still reads the layout of checkpoints written before the
config existed (the bundled model among them). The ranges are checked as a config is made
(`__post_init__`), whether in Python or from a file.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from fmtool.data.faces import CROP, RESAMPLE
from fmtool.engine.recipe import bounds_of
from fmtool.engine.schema import ConfigError, MetadataError, check_range, plain, read_config
from fmtool.models.vae import DECODERS, FaceVAE
from fmtool.vae.recipes import MAX_PARAMETERS, VAERecipe, parameter_count

KIND = "vae"


@dataclass(frozen=True)
class VAEConfig:
    """The report's VAE as trained: faces of `image_size` pixels (a multiple of 32), a code of
    `latent_dim` numbers, and the centre crop its faces were cut with (keep crop[0]/crop[1] of
    the shorter side, as LFW's 224 of 250). Faces are resized bilinearly, pixels in [0, 1].
    `decoder` names the report's transposed convolutions or the upsampling variant
    (fmtool.models.vae). A VAE fmtool could not have trained is a ConfigError (a UserError and
    a ValueError) as the config is made."""

    image_size: int = 64
    latent_dim: int = 256
    crop: tuple[int, int] = CROP
    decoder: str = "transposed"

    def __post_init__(self) -> None:
        """Checks the sizes against the ranges their recipe fields allow (fmtool.vae.recipes, the
        one place they are written) and the model's size; a crop given as a list becomes a
        tuple."""
        knobs = {f.name: f for f in fields(VAERecipe)}
        for name in ("image_size", "latent_dim"):
            check_range(name, getattr(self, name), bounds_of(knobs[name], int))
        if parameter_count(self.image_size, self.latent_dim) > MAX_PARAMETERS:
            raise ConfigError(f"a VAE of {self.image_size} px with a {self.latent_dim}-number "
                              "code is larger than any VAE fmtool trains")
        if self.decoder not in DECODERS:
            raise ConfigError(f"decoder must be {' or '.join(DECODERS)}, got "
                              f"{str(self.decoder)[:40]!r}")
        crop = self.crop
        if not (isinstance(crop, (list, tuple)) and len(crop) == 2
                and all(isinstance(n, int) and not isinstance(n, bool) for n in crop)
                and 0 < crop[0] <= crop[1]):
            raise ConfigError(f"crop must be two whole numbers 0 < keep <= of (keep/of of the "
                              f"shorter side), got {str(crop)[:40]}")
        object.__setattr__(self, "crop", tuple(crop))

    @classmethod
    def from_recipe(cls, recipe: VAERecipe) -> "VAEConfig":
        return cls(image_size=recipe.image_size, latent_dim=recipe.latent_dim,
                   decoder=recipe.decoder)

    @classmethod
    def from_dict(cls, data: Any) -> "VAEConfig":
        """A config from its stored table: unknown keys, wrong types and values out of range
        are a MetadataError. Tables written by fmtool 0.2 have no decoder: theirs was the
        report's."""
        if isinstance(data, dict) and "decoder" not in data:
            data = {**data, "decoder": "transposed"}
        return read_config(cls, data)

    def to_dict(self) -> dict[str, Any]:
        return plain(self)

    def preprocessing(self) -> dict[str, Any]:
        """What is done to a face before the model sees it, as exported files record it: keep
        crop[0]/crop[1] of the shorter side, centred, resize bilinearly, pixels in [0, 1]."""
        return {"crop": list(self.crop), "image_size": self.image_size, "resample": RESAMPLE,
                "range": [0, 1]}

    def build(self) -> FaceVAE:
        """The untrained network this config describes."""
        return FaceVAE(image_size=self.image_size, latent_dim=self.latent_dim,
                       decoder=self.decoder)

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> "VAEConfig":
        """The config a checkpoint's metadata holds: its `config` table, or for a checkpoint
        written before configs existed, the same facts from its architecture and preprocessing."""
        if "config" in meta:
            return cls.from_dict(meta["config"])
        return cls.from_dict(_legacy_config(meta))


def checkpoint_meta(config: VAEConfig, recipe: VAERecipe,
                    data: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a VAE checkpoint carries besides its weights: its kind and config, the recipe that
    trained it and the faces it saw (how many, how many people held out)."""
    return {"kind": KIND, "config": config.to_dict(), "recipe": recipe.to_dict(),
            "data": data or {}}


def _legacy_config(meta: dict[str, Any]) -> dict[str, Any]:
    """The config table of a checkpoint from before configs, whose architecture and
    preprocessing must agree (the preprocessing made the faces the model takes)."""
    if "architecture" not in meta:
        raise MetadataError("its metadata lacks config")
    if "preprocessing" not in meta:
        raise MetadataError("its metadata lacks preprocessing")
    arch, prep = meta["architecture"], meta["preprocessing"]
    if not isinstance(arch, dict) or not isinstance(prep, dict):
        raise MetadataError("its architecture and preprocessing must be tables of values")
    if arch.get("name", "FaceVAE") != "FaceVAE":
        raise MetadataError(f"its architecture is {str(arch['name'])[:40]}, not FaceVAE")
    unknown = [str(k) for k in arch if k not in ("name", "image_size", "latent_dim")] + [
        str(k) for k in prep if k not in ("crop", "image_size", "resample", "range")]
    if unknown:
        raise MetadataError(f"its architecture or preprocessing has an unknown key {unknown[0][:40]!r}")
    if prep.get("image_size") != arch.get("image_size"):
        raise MetadataError(f"its preprocessing makes {str(prep.get('image_size'))[:20]} px faces, "
                            f"but its model takes {str(arch.get('image_size'))[:20]} px")
    if prep.get("resample", RESAMPLE) != RESAMPLE:
        raise MetadataError(f"its preprocessing resamples with {str(prep['resample'])[:20]}; "
                            f"fmtool uses {RESAMPLE}")
    if prep.get("range", [0, 1]) != [0, 1]:
        raise MetadataError("its preprocessing scales pixels to another range than [0, 1]")
    missing = [key for key in ("image_size", "latent_dim") if key not in arch]
    if missing:
        raise MetadataError(f"its architecture lacks {missing[0]}")
    return {"image_size": arch["image_size"], "latent_dim": arch["latent_dim"],
            "crop": prep.get("crop")}
