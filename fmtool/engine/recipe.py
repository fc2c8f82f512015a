"""What every training recipe has: the values the Trainer, optimiser and schedule read.

A recipe is plain, frozen data, stored in each run folder and checkpoint. Each model family
extends it (`fmtool.cnn.recipes`, `fmtool.vae.recipes`) and writes its named recipes once, as
instances. Each field carries the help text the command line shows for it (`field_help`); the
CLI turns every field into an option whose "(paper: ...)" default is read from the paper recipe,
so a recipe change can never leave the help text wrong.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, TypeVar

from fmtool.choices import Optimizer, Schedule

SCHEDULE_PANEL = "Recipe: optimisation"
AUGMENT_PANEL = "Recipe: augmentation and regularisation"
MODEL_PANEL = "Recipe: model and data"

R = TypeVar("R", bound="Recipe")


def knob(help: str, *, min: float | None = None, max: float | None = None,
         panel: str = SCHEDULE_PANEL, choices: type | None = None, default: Any = dataclasses.MISSING,
         cli: bool = True) -> Any:
    """A recipe field and how the command line offers it (help, range, panel, enum of choices)."""
    metadata = {"help": help, "min": min, "max": max, "panel": panel, "choices": choices, "cli": cli}
    return dataclasses.field(default=default, metadata=metadata)


@dataclass(frozen=True, kw_only=True)
class Recipe:
    """Every value a training run depends on that the shared engine reads."""

    name: str = knob("Recipe name.", cli=False, default="custom")
    description: str = knob("What the recipe is for, in one line.", cli=False, default="")
    epochs: int = knob("Epochs.", min=1)
    batch_size: int = knob("Batch size (per process under torchrun).", min=1)
    lr: float = knob("Learning rate; the peak for onecycle.", min=0.0)
    weight_decay: float = knob("Weight decay.", min=0.0)
    optimizer: str = knob("adam (L2 weight decay, the report's) or adamw (decoupled).",
                          choices=Optimizer, default="adam")
    schedule: str = knob("step (StepLR per epoch, the report's); onecycle or cosine (per batch).",
                         choices=Schedule, default="step")
    step_size: int = knob("StepLR period in epochs.", min=1)
    gamma: float = knob("StepLR factor.", min=0.0)
    warmup: float = knob("Warm-up fraction of all batches (onecycle, cosine).", min=0.0, max=1.0,
                         default=0.0)
    ema_decay: float = knob("Weight EMA decay per batch; 0 = off.", min=0.0, max=1.0, default=0.0)
    seed: int = knob("Random seed.", panel=MODEL_PANEL)
    image_size: int = knob("Model input size in pixels.", min=8, panel=MODEL_PANEL)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def with_overrides(self: R, **overrides: Any) -> R:
        """A copy with every non-None override applied."""
        return replace(self, **{k: _plain(v) for k, v in overrides.items() if v is not None})

    @classmethod
    def from_dict(cls: type[R], data: dict[str, Any]) -> R:
        """A recipe from run.json or a checkpoint; fields it does not know are left out."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def summary(self) -> str:
        """`key=value, ...` of every value, for the line a training run starts with."""
        return ", ".join(f"{k}={v}" for k, v in self.to_dict().items()
                         if k not in ("name", "description"))


def _plain(value: Any) -> Any:
    """Enum members from the command line are stored as their plain string values."""
    return value.value if hasattr(value, "value") and isinstance(value, str) else value


def recipe_fields(recipe_class: type[Recipe]) -> list[dataclasses.Field]:
    """The fields the command line offers as options, in declaration order."""
    return [f for f in fields(recipe_class) if f.metadata.get("cli", True)]
