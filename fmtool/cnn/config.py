"""What a trained CNN is: its architecture, its classes and how it reads its inputs, as one
typed config that its checkpoint stores and fmtool rebuilds the network from.

`CNNConfig.from_meta` is the one reader of a CNN checkpoint's description. It rejects unknown
keys and out-of-range values with a clear error, and it still reads the layout of every
checkpoint fmtool wrote before the config existed (the bundled model among them), so no file
is left behind. The ranges are checked as a config is made (`__post_init__`), so a config built
in Python is held to the same ranges as one read from a file, at once.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Sequence

from fmtool.cnn.recipes import CNNRecipe
from fmtool.data import fashion
from fmtool.engine.bounds import Bounds
from fmtool.engine.recipe import bounds_of
from fmtool.engine.schema import ConfigError, MetadataError, check_range, plain, read_config
from fmtool.models.cnn import DROPOUT, INPUT_SCALING, VARIANTS, FashionCNN

KIND = "cnn"
MAX_CLASSES = 1000
MAX_CLASS_NAME = 200


@dataclass(frozen=True)
class CNNConfig:
    """The report's CNN as trained: channel width, input size, dropout, network variant (the
    text's or the author's code's), class names in output order, and flip test-time
    augmentation. Inputs are always 28x28 pictures like Fashion-MNIST's, scaled as the variant
    reads them (`scaling`). A value outside what fmtool trains is a ConfigError (a UserError and
    a ValueError) as the config is made."""

    width: float = 1.0
    image_size: int = 32
    dropout: float = DROPOUT
    variant: str = "text"
    class_names: tuple[str, ...] = fashion.CLASSES
    tta_flip: bool = False

    def __post_init__(self) -> None:
        """Checks every value against the range its recipe field allows (fmtool.cnn.recipes, the
        one place it is written); a list of class names becomes a tuple."""
        knobs = {f.name: f for f in fields(CNNRecipe)}
        for name, kind in (("width", float), ("image_size", int), ("dropout", float)):
            object.__setattr__(self, name, check_range(name, getattr(self, name),
                                                       bounds_of(knobs[name], kind)))
        if self.variant not in VARIANTS:
            raise ConfigError(f"variant must be {' or '.join(VARIANTS)}, got "
                              f"{str(self.variant)[:40]!r}")
        if not isinstance(self.tta_flip, bool):
            raise ConfigError(f"tta_flip must be true or false, got {str(self.tta_flip)[:40]!r}")
        object.__setattr__(self, "class_names", _class_names(self.class_names))

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def scaling(self) -> str:
        """"standard" (fmtool's mean and std) or "minmax" ([0, 1] per image)."""
        return INPUT_SCALING[self.variant]

    @classmethod
    def from_recipe(cls, recipe: CNNRecipe, width: float | None = None) -> "CNNConfig":
        """The network a recipe trains (at `width` when given) on Fashion-MNIST's classes."""
        return cls(width=recipe.width if width is None else width, image_size=recipe.image_size,
                   dropout=recipe.dropout, variant=recipe.variant, tta_flip=recipe.tta_flip)

    @classmethod
    def from_dict(cls, data: Any) -> "CNNConfig":
        """A config from its stored table: unknown keys, wrong types and values out of range
        are a MetadataError."""
        return read_config(cls, data)

    def to_dict(self) -> dict[str, Any]:
        return plain(self)

    def build(self) -> FashionCNN:
        """The untrained network this config describes."""
        return FashionCNN(num_classes=self.num_classes, width=self.width,
                          image_size=self.image_size, dropout=self.dropout, variant=self.variant)

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> "CNNConfig":
        """The config a checkpoint's metadata holds: its `config` table, or for a checkpoint
        written before configs existed, the same facts from its older layout."""
        if "config" in meta:
            return cls.from_dict(meta["config"])
        return cls.from_dict(_legacy_config(meta))


def _class_names(names: Sequence[str]) -> tuple[str, ...]:
    """`names` as a tuple if they are 2 to MAX_CLASSES distinct texts of 1 to MAX_CLASS_NAME
    characters, else a ConfigError."""
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"class_names must be a list of texts, got {str(names)[:40]}")
    if not 2 <= len(names) <= MAX_CLASSES:
        raise ConfigError(f"class_names names {len(names)} classes; a classifier has 2 to "
                          f"{MAX_CLASSES}")
    if not all(0 < len(n) <= MAX_CLASS_NAME for n in names):
        raise ConfigError(f"class names must be texts of 1 to {MAX_CLASS_NAME} characters")
    if len(set(names)) != len(names):
        repeated = next(n for n in names if names.count(n) > 1)
        raise ConfigError(f"class names repeat: {repeated[:40]!r} is there twice or more")
    return tuple(names)


def checkpoint_meta(config: CNNConfig, recipe: CNNRecipe,
                    data: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a CNN checkpoint carries besides its weights: its kind and config (enough to use it
    on its own), the recipe that trained it and the data it saw."""
    return {"kind": KIND, "config": config.to_dict(), "recipe": recipe.to_dict(),
            "data": data or {}}


def _legacy_config(meta: dict[str, Any]) -> dict[str, Any]:
    """The config table of a checkpoint from before configs: architecture, class_names,
    normalization and tta_flip at the top of its metadata. Keys that its older versions lacked
    take the values those versions used (the text network, dropout 0.7, width 1)."""
    if "architecture" not in meta:
        raise MetadataError("its metadata lacks config")
    arch = meta["architecture"]
    if not isinstance(arch, dict):
        raise MetadataError("its architecture is not a table of values")
    known = {"name", "width", "num_classes", "image_size", "in_channels", "dropout", "variant"}
    unknown = [str(key) for key in arch if key not in known]
    if unknown:
        raise MetadataError(f"its architecture has an unknown key {unknown[0][:40]!r}")
    if arch.get("name", "FashionCNN") != "FashionCNN":
        raise MetadataError(f"its architecture is {str(arch['name'])[:40]}, not FashionCNN")
    if arch.get("in_channels", 1) != 1:
        raise MetadataError("its architecture takes more than one channel; Fashion-MNIST is grey")
    table = {"width": arch.get("width", 1.0), "image_size": arch.get("image_size"),
             "dropout": arch.get("dropout", DROPOUT), "variant": arch.get("variant", "text"),
             "class_names": meta.get("class_names"), "tta_flip": meta.get("tta_flip", False)}
    if table["image_size"] is None or table["class_names"] is None:
        raise MetadataError("its metadata lacks " + ("architecture.image_size"
                                                     if table["image_size"] is None else "class_names"))
    classes = arch.get("num_classes")
    if not Bounds(int, 2, MAX_CLASSES).accepts(classes):
        raise MetadataError(f"its architecture's num_classes is {str(classes)[:20]}, not a whole "
                            f"number from 2 to {MAX_CLASSES}")
    if isinstance(table["class_names"], list) and classes != len(table["class_names"]):
        raise MetadataError(f"it names {len(table['class_names'])} classes for a model of {classes}")
    _check_legacy_normalization(meta, str(table["variant"]))
    return table


def _check_legacy_normalization(meta: dict[str, Any], variant: str) -> None:
    """Inference feeds 28x28 images scaled as the variant reads them (standardised with
    fmtool's constants, or min-max): an older checkpoint that recorded anything else would get
    wrong answers without a word, so it is refused."""
    norm = meta.get("normalization")
    if norm is None or variant not in VARIANTS:
        return
    if not isinstance(norm, dict):
        raise MetadataError("its normalization is not a table of values")
    scaling = norm.get("scaling", "standard")
    if scaling != INPUT_SCALING[variant]:
        raise MetadataError(f"its inputs are scaled {str(scaling)[:40]!r}, but the {variant} "
                            f"network reads them {INPUT_SCALING[variant]!r}")
    if norm.get("source_size", fashion.SOURCE_SIZE) != fashion.SOURCE_SIZE:
        raise MetadataError(f"it expects inputs of {str(norm['source_size'])[:20]} px; fmtool gives "
                            f"{fashion.SOURCE_SIZE} px")
    if scaling == "standard":
        mean, std = norm.get("mean"), norm.get("std")
        unit = Bounds(float, 0, 10, min_open=True)
        if not (unit.accepts(mean) and unit.accepts(std)) or (
                abs(mean - fashion.MEAN) > 1e-6 or abs(std - fashion.STD) > 1e-6):
            raise MetadataError(f"it expects inputs normalised with mean {str(mean)[:20]} and std "
                                f"{str(std)[:20]}; fmtool gives {fashion.MEAN:g} and {fashion.STD:g}")
