"""The face VAE's training recipe, held once as plain data: the report's Table 3."""

from __future__ import annotations

from dataclasses import dataclass

from fmtool.engine.recipe import MODEL_PANEL, SCHEDULE_PANEL, Recipe, knob


@dataclass(frozen=True, kw_only=True)
class VAERecipe(Recipe):
    """A Recipe plus what the VAE adds: the latent size and the share of people held out."""

    batch_size: int = knob("Batch size (per process under torchrun).", min=2,
                           panel=SCHEDULE_PANEL)
    image_size: int = knob("Face size in pixels, a multiple of 32 (64 or 128 train on a CPU).",
                           min=32, panel=MODEL_PANEL)
    latent_dim: int = knob("Size of the latent code.", min=1, panel=MODEL_PANEL, default=256)
    val_fraction: float = knob("Share of the images held out for validation, by person.",
                               min=0.01, max=0.9, panel=MODEL_PANEL, default=0.1)


PAPER = VAERecipe(
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
)

RECIPES: dict[str, VAERecipe] = {r.name: r for r in (PAPER,)}
