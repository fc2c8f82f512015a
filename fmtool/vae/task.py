"""The face VAE as a training task for the shared Trainer.

Like the CNN, the whole training set stays as uint8 tensors on the training device and a batch
is a slice of an index permutation, converted to [0, 1] floats as one tensor operation.

Validation (end of every epoch, held-out people): the loss terms use a sampled z, as in
training, but with noise from a generator seeded by the recipe's seed, so the number is the same
estimate every epoch and evaluating never moves the training RNG (resume stays exact). PSNR and
SSIM are measured on the deterministic reconstruction (decoding mu), which is what
`fmtool reconstruct` produces by default.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from fmtool.data.faces import FaceSplits, to_unit
from fmtool.engine.batching import epoch_batches
from fmtool.engine.device import autocast
from fmtool.errors import UserError
from fmtool.metrics import image as image_metrics
from fmtool.models.vae import reparameterize, vae_loss_terms
from fmtool.vae.config import KIND, VAEConfig, checkpoint_meta
from fmtool.vae.figures import save_grid
from fmtool.vae.inference import EVAL_BATCH, reconstruct
from fmtool.vae.recipes import VAERecipe

GRID_PAIRS = 8  # validation faces shown in each epoch's reconstruction grid
GRID_FOLDER = "reconstructions"


@dataclass
class VAETask:
    """BCE + w KL training of the report's VAE (w = the recipe's kl_weight, 1 in the report);
    picks best.pt by the same objective on the held-out people."""

    faces: FaceSplits
    recipe: VAERecipe
    device: torch.device
    precision: torch.dtype | None = None  # autocast dtype; None = fp32

    kind = KIND
    best_metric = "val_loss"
    best_mode = "min"

    def __post_init__(self) -> None:
        size = self.recipe.image_size
        if self.faces.train.shape[-1] != size:
            raise ValueError(f"faces are {self.faces.train.shape[-1]} px, the recipe wants {size}")
        if len(self.faces.train) < 2:  # every batch needs two images (see batches)
            raise UserError(f"{self.faces.source} gave {len(self.faces.train)} training face; "
                            "training needs at least 2")
        self.train_x = self.faces.train.to(self.device)
        self.val_x = self.faces.val.to(self.device)
        self.config = VAEConfig.from_recipe(self.recipe)
        self.model = self.config.build()

    def batches(self, epoch: int) -> list[torch.Tensor]:
        """A seeded permutation in batches; a last batch of one joins the one before it
        (BatchNorm cannot train on a single image when the feature map is 1x1)."""
        chunks = epoch_batches(len(self.train_x), self.recipe.batch_size, self.recipe.seed, epoch)
        if len(chunks) > 1 and len(chunks[-1]) == 1:
            chunks[-2:] = [torch.cat(chunks[-2:])]
        return chunks

    def step(self, model: torch.nn.Module,
             batch: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        x = to_unit(self.train_x[batch.to(self.device, non_blocking=True)])
        with autocast(self.device, self.precision):
            logits, mu, logvar = model(x)
        bce, kl = vae_loss_terms(logits, x, mu, logvar)  # in fp32 whatever the autocast
        objective = bce + self.recipe.kl_weight * kl
        loss = objective.mean()
        sums = {"loss": objective.detach().sum(), "bce": bce.detach().sum(),
                "kl": kl.detach().sum(), "count": torch.full((), float(len(x)), device=x.device)}
        return loss, sums

    def summarize(self, sums: dict[str, float]) -> dict[str, float]:
        n = max(sums.get("count", 0.0), 1.0)
        return {f"train_{key}": sums.get(key, 0.0) / n for key in ("loss", "bce", "kl")}

    def status(self, sums: dict[str, float]) -> str:
        m = self.summarize(sums)
        return f"loss {m['train_loss']:.1f} (bce {m['train_bce']:.1f} kl {m['train_kl']:.1f})"

    @torch.inference_mode()
    def evaluate(self, model: torch.nn.Module) -> dict[str, float]:
        vae = model.eval()
        generator = torch.Generator().manual_seed(self.recipe.seed)
        totals = dict.fromkeys(("bce", "kl", "psnr", "ssim"), 0.0)
        for start in range(0, len(self.val_x), EVAL_BATCH):
            x = to_unit(self.val_x[start:start + EVAL_BATCH])
            with autocast(self.device, self.precision):
                mu, logvar = vae.encode(x)
                eps = torch.randn(mu.shape, generator=generator).to(self.device)
                logits = vae.decode_logits(reparameterize(mu, logvar, eps))
                recon = vae.decode(mu)
            bce, kl = vae_loss_terms(logits, x, mu, logvar)
            recon = recon.float()
            totals["bce"] += float(bce.sum())
            totals["kl"] += float(kl.sum())
            totals["psnr"] += float(image_metrics.psnr(recon, x).sum())
            totals["ssim"] += float(image_metrics.ssim(recon, x).sum())
        n = max(len(self.val_x), 1)
        objective = totals["bce"] + self.recipe.kl_weight * totals["kl"]
        return {"val_loss": objective / n, "val_bce": totals["bce"] / n,
                "val_kl": totals["kl"] / n, "val_psnr": totals["psnr"] / n,
                "val_ssim": totals["ssim"] / n}

    def meta(self) -> dict[str, Any]:
        return checkpoint_meta(self.config, self.recipe, self.faces.info(self.recipe.val_fraction))

    def after_epoch(self, run_dir: Path, epoch: int) -> None:
        """reconstructions/epoch_NNNN.png (validation faces over their reconstructions) and
        the loss and PSNR curves so far."""
        from fmtool.engine.runs import read_metrics
        from fmtool.metrics import plots

        originals = self.val_x[:GRID_PAIRS].cpu()
        recons = reconstruct(self.model, originals, self.device)
        save_grid(torch.cat([to_unit(originals), recons]),
                  run_dir / GRID_FOLDER / f"epoch_{epoch:04d}.png", columns=len(originals))
        history = read_metrics(run_dir)
        plots.curves(history, [("train_loss", "train"), ("val_loss", "validation")],
                     "BCE + w KL per image", "Loss per epoch", run_dir / "loss_curve.png")
        plots.curves(history, [("val_psnr", "validation")], "PSNR (dB)",
                     "Validation reconstruction PSNR", run_dir / "psnr_curve.png")
