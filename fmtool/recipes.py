"""The report's training recipes, held once as plain data (Table 1: CNN, Table 3: VAE)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class Recipe:
    """Every value a training run depends on; stored in each run folder and checkpoint."""

    name: str
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    step_size: int
    gamma: float
    seed: int
    image_size: int
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def with_overrides(self, **overrides: Any) -> "Recipe":
        """Returns a copy with every non-None override applied."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Recipe":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


CNN_RECIPES: dict[str, Recipe] = {
    "paper": Recipe(
        name="paper",
        epochs=100,
        batch_size=64,
        lr=5e-4,
        weight_decay=1e-3,
        step_size=10,
        gamma=0.5,
        seed=6,
        image_size=32,
        description="the report's Table 1: Adam 5e-4, wd 1e-3, StepLR 10/0.5, 100 epochs, batch 64",
    ),
}

VAE_RECIPES: dict[str, Recipe] = {
    "paper": Recipe(
        name="paper",
        epochs=1000,
        batch_size=64,
        lr=3e-4,
        weight_decay=0.0,
        step_size=25,
        gamma=0.95,
        seed=42,
        image_size=224,
        description="the report's Table 3: Adam 3e-4, StepLR 25/0.95, 1000 epochs, batch 64, 224 px",
    ),
}
