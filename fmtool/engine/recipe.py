"""What every training recipe has: the values the Trainer, optimiser and schedule read.

A recipe is plain, frozen data, stored in each run folder and checkpoint. Each model family
extends it (`fmtool.cnn.recipes`, `fmtool.vae.recipes`) and writes its named recipes once, as
instances. Each field carries the help text the command line shows for it (`field_help`); the
CLI turns every field into an option whose "(paper: ...)" default is read from the paper recipe,
so a recipe change can never leave the help text wrong.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, TypeVar

from fmtool.choices import Optimizer, Schedule
from fmtool.engine.bounds import Bounds, plain_text
from fmtool.engine.schema import MetadataError
from fmtool.errors import Option, UserError

SCHEDULE_PANEL = "Recipe: optimisation"
AUGMENT_PANEL = "Recipe: augmentation and regularisation"
MODEL_PANEL = "Recipe: model and data"

R = TypeVar("R", bound="Recipe")
MAX_SEED = 2**63 - 1
MAX_EPOCHS = 1_000_000
MAX_BATCH = 1_000_000


def knob(help: str, *, min: float | None = None, max: float | None = None,
         panel: str = SCHEDULE_PANEL, choices: type | None = None, default: Any = dataclasses.MISSING,
         cli: bool = True, min_open: bool = False, max_open: bool = False,
         multiple_of: int | None = None) -> Any:
    """A recipe field and how the command line offers it (help, range, panel, enum of choices).

    The range is `min`..`max`, each end included unless `min_open` / `max_open`; an int field can
    also be required to be a `multiple_of` something. Every value is checked against it (see
    `check_value`) on the command line and when a recipe is read back from a run or checkpoint.
    """
    metadata = {"help": help, "min": min, "max": max, "panel": panel, "choices": choices, "cli": cli,
                "min_open": min_open, "max_open": max_open, "multiple_of": multiple_of}
    return dataclasses.field(default=default, metadata=metadata)


@dataclass(frozen=True, kw_only=True)
class Recipe:
    """Every value a training run depends on that the shared engine reads."""

    name: str = knob("Recipe name.", cli=False, default="custom")
    description: str = knob("What the recipe is for, in one line.", cli=False, default="")
    epochs: int = knob("Epochs.", min=1, max=MAX_EPOCHS)
    batch_size: int = knob("Batch size (per process under torchrun).", min=1, max=MAX_BATCH)
    lr: float = knob("Learning rate; the peak for onecycle.", min=0.0, min_open=True, max=10.0)
    weight_decay: float = knob("Weight decay.", min=0.0, max=1.0)
    optimizer: str = knob("adam (L2 weight decay, the report's) or adamw (decoupled).",
                          choices=Optimizer, default="adam")
    schedule: str = knob("step (StepLR per epoch, the report's); onecycle or cosine (per batch).",
                         choices=Schedule, default="step")
    step_size: int = knob("StepLR period in epochs.", min=1, max=MAX_EPOCHS)
    gamma: float = knob("StepLR factor.", min=0.0, min_open=True, max=1.0)
    # A warm-up of all batches (1.0) leaves OneCycleLR no batch to come down in: it divides by
    # zero at the very last batch. Any fraction below 1 works (schedules.make_schedule).
    warmup: float = knob("Warm-up fraction of all batches (onecycle, cosine).", min=0.0, max=1.0,
                         max_open=True, default=0.0)
    ema_decay: float = knob("Weight EMA decay per batch; 0 = off.", min=0.0, max=1.0,
                            max_open=True, default=0.0)
    # Scoring the held-out and test images costs a CPU run as much as a tenth of its training;
    # a schedule built for a fixed budget has its best epoch at or near the end.
    # One help for both models: the VAE has held-out faces only, the CNN test images too.
    evaluate_last: int = knob("Evaluate (the held-out images; the CNN's test images too) only "
                              "in the last N epochs (the best epoch is picked among them); 0 = "
                              "every epoch.", min=0,
                              max=MAX_EPOCHS, default=0)
    # Seeds feed torch generators, which take 64-bit integers; non-negative int64 is portable.
    seed: int = knob("Random seed.", min=0, max=MAX_SEED, panel=MODEL_PANEL)
    image_size: int = knob("Model input size in pixels.", min=8, max=512, multiple_of=8,
                           panel=MODEL_PANEL)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def with_overrides(self: R, **overrides: Any) -> R:
        """A copy with every non-None override applied."""
        return replace(self, **{k: _plain(v) for k, v in overrides.items() if v is not None})

    @classmethod
    def from_dict(cls: type[R], data: dict[str, Any], where: str = "") -> R:
        """A recipe from run.json or a checkpoint; fields it does not know are left out.

        Every value is checked as the command line checks it (`check`), so a damaged or edited
        file gives a UserError starting with `where` (e.g. the file), not a crash later on."""
        if not isinstance(data, dict):
            raise UserError(where + "the recipe is not a table of values")
        known = {f.name for f in fields(cls)}
        missing = [f.name for f in fields(cls) if f.name not in data
                   and f.default is dataclasses.MISSING]
        if missing:
            raise UserError(where + f"the recipe lacks {', '.join(missing)}")
        return cls(**{k: v for k, v in data.items() if k in known}).check(where)

    def check(self: R, where: str = "") -> R:
        """This recipe, if every value is of its field's type and in its range and the values
        fit together (`check_together`); else a UserError naming the option and its range."""
        types = typing.get_type_hints(type(self))
        for item in fields(self):
            value, kind = getattr(self, item.name), types[item.name]
            choices = item.metadata.get("choices")
            if kind in (int, float):
                bounds_of(item, kind).check(item.name, value, where)
            elif kind is bool and not isinstance(value, bool):
                raise UserError(plain_text(where) + "{} must be true or false, got {!r}",
                                Option(item.name), value)
            elif kind is str and (not isinstance(value, str) or choices is not None and value
                                  not in [c.value for c in choices]):
                options = "" if choices is None else " (" + ", ".join(c.value for c in choices) + ")"
                raise UserError(plain_text(where) + "{} must be a name" + options + ", got {!r}",
                                Option(item.name), value)
        self.check_together(where)
        return self

    def check_together(self, where: str = "") -> None:
        """Checks between fields (e.g. that the model fits); subclasses add theirs."""

    def summary(self) -> str:
        """`key=value, ...` of every value, for the line a training run starts with."""
        return ", ".join(f"{k}={v}" for k, v in self.to_dict().items()
                         if k not in ("name", "description"))


def _plain(value: Any) -> Any:
    """Enum members from the command line are stored as their plain string values."""
    return value.value if hasattr(value, "value") and isinstance(value, str) else value


def bounds_of(item: dataclasses.Field, kind: type) -> Bounds:
    """The range a numeric recipe field's knob allows."""
    meta = item.metadata
    return Bounds(kind, meta.get("min"), meta.get("max"), meta.get("min_open", False),
                  meta.get("max_open", False), meta.get("multiple_of"))


def recipe_fields(recipe_class: type[Recipe]) -> list[dataclasses.Field]:
    """The fields the command line offers as options, in declaration order."""
    return [f for f in fields(recipe_class) if f.metadata.get("cli", True)]


def check_stored(recipe_class: type[Recipe], table: Any) -> None:
    """Each number a checkpoint's recipe table records within its field's range, else a
    MetadataError: a damaged value is one line when the checkpoint is loaded, not a crash when a
    command reads it later. Fields an older version did not record are left alone."""
    if not isinstance(table, dict):
        return
    types = typing.get_type_hints(recipe_class)
    for item in fields(recipe_class):
        kind = types[item.name]
        if kind in (int, float) and item.name in table:
            bounds = bounds_of(item, kind)
            if not bounds.accepts(table[item.name]):
                shown = repr(table[item.name])[:40]
                raise MetadataError(f"its recipe.{item.name} is {shown}, not {bounds.describe()}")
