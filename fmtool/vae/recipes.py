"""The face VAE's training recipe, held once as plain data: the report's Table 3."""

from __future__ import annotations

from dataclasses import dataclass, replace

from fmtool.choices import Decoder
from fmtool.engine.bounds import plain_text
from fmtool.engine.recipe import MAX_BATCH, MODEL_PANEL, SCHEDULE_PANEL, Recipe, knob
from fmtool.errors import Option, UserError

# The largest VAE that trains: 200 million weights are 3.2 GB with their gradients and Adam's
# two moments (224 px with a 2048-dim code is 157 million; 512 px with 1024 is 406 million).
MAX_PARAMETERS = 200_000_000


@dataclass(frozen=True, kw_only=True)
class VAERecipe(Recipe):
    """A Recipe plus what the VAE adds: the latent size and the share of people held out."""

    batch_size: int = knob("Batch size (per process under torchrun).", min=2, max=MAX_BATCH,
                           panel=SCHEDULE_PANEL)
    image_size: int = knob("Face size in pixels, a multiple of 32 (64 or 128 train on a CPU).",
                           min=32, max=512, multiple_of=32, panel=MODEL_PANEL)
    latent_dim: int = knob("Size of the latent code.", min=1, max=2048, panel=MODEL_PANEL,
                           default=256)
    val_fraction: float = knob("Share of the images held out for validation, by person.",
                               min=0.01, max=0.9, panel=MODEL_PANEL, default=0.1)
    decoder: str = knob("transposed: the report's transposed convolutions; upsample: "
                        "nearest-neighbour upsampling and a convolution (no checkerboard).",
                        choices=Decoder, panel=MODEL_PANEL, default="transposed")
    # Below 1 the code may carry more of each face than the unit Gaussian prior allows: sharper
    # reconstructions for a less regular latent space (a beta-VAE with beta < 1).
    kl_weight: float = knob("Weight of the KL term in the loss (BCE + w * KL); 1 = the report's.",
                            min=0.0, max=10.0, panel=SCHEDULE_PANEL, default=1.0)

    def check_together(self, where: str = "") -> None:
        """The model must fit: its weight count grows with the image size times the latent size,
        so each may be large alone but not both (counted without allocating anything)."""
        count = parameter_count(self.image_size, self.latent_dim)
        if count > MAX_PARAMETERS:
            raise UserError(plain_text(where) + "a VAE for {} px faces with a {}-dim latent "
                            "code has {:,} weights, more than the {:,} that train in reasonable "
                            "memory; lower {} or {}",
                            self.image_size, self.latent_dim, count, MAX_PARAMETERS,
                            Option("image_size"), Option("latent_dim"))


def parameter_count(image_size: int, latent_dim: int) -> int:
    """The weights of the VAE for these sizes, counted on torch's meta device (no memory)."""
    import torch

    from fmtool.models.vae import FaceVAE

    with torch.device("meta"):
        model = FaceVAE(image_size=image_size, latent_dim=latent_dim)
    return sum(p.numel() for p in model.parameters())


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

# The same VAE at 64 px, for a laptop CPU: a 64 px face is 12x fewer pixels than 224 px and the
# network has 4.7 million weights instead of 22.4, so an epoch takes a minute or more on one core.
# A larger learning rate on a cosine schedule gets there in tens of epochs, not 1,000. In short
# runs (docs/recipes.md) a KL weight of 0.1 and batches of 32 gave the sharpest faces per
# minute; a larger learning rate and an upsampling decoder did worse.
CPU = replace(
    PAPER,
    name="cpu",
    epochs=75,
    batch_size=32,
    lr=1e-3,
    schedule="cosine",
    warmup=0.02,
    image_size=64,
    kl_weight=0.1,
    description="the report's VAE at 64 px for a CPU: BCE + 0.1 x KL, Adam 1e-3 on a cosine "
                "schedule, 75 epochs, batch 32 (about 90 minutes on one core of a 2-core CPU with "
                "native bf16, as the bundled VAE's model card records)",
)

RECIPES: dict[str, VAERecipe] = {r.name: r for r in (PAPER, CPU)}
