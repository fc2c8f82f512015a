"""The face VAE as a training task, plus loading it, batched encoding/decoding and its figures.

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

from fmtool.analysis import image_metrics
from fmtool.checkpoint import load_model
from fmtool.data.faces import FaceSplits, preprocessing, to_unit
from fmtool.device import autocast
from fmtool.models.vae import FaceVAE, reparameterize, vae_loss_terms
from fmtool.recipes import Recipe

EVAL_BATCH = 128
GRID_PAIRS = 8  # validation faces shown in each epoch's reconstruction grid
GRID_FOLDER = "reconstructions"


def build_model(meta: dict[str, Any]) -> FaceVAE:
    arch = meta["architecture"]
    return FaceVAE(image_size=arch["image_size"], latent_dim=arch["latent_dim"])


def load_vae(path: Path, device: torch.device) -> tuple[FaceVAE, dict[str, Any]]:
    """A VAE checkpoint as a ready model in eval mode, with its metadata."""
    return load_model(path, "vae", build_model, device)  # type: ignore[return-value]


@torch.inference_mode()
def encode(model: FaceVAE, images: torch.Tensor, device: torch.device,
           batch_size: int = EVAL_BATCH) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 [N, 3, S, S] -> (mu, logvar) as CPU float tensors [N, latent_dim]."""
    model.eval()
    mus, logvars = [], []
    for start in range(0, len(images), batch_size):
        mu, logvar = model.encode(to_unit(images[start:start + batch_size].to(device)))
        mus.append(mu.float().cpu())
        logvars.append(logvar.float().cpu())
    if not mus:
        return torch.empty(0, model.latent_dim), torch.empty(0, model.latent_dim)
    return torch.cat(mus), torch.cat(logvars)


@torch.inference_mode()
def decode(model: FaceVAE, z: torch.Tensor, device: torch.device,
           batch_size: int = EVAL_BATCH) -> torch.Tensor:
    """Latent codes [N, latent_dim] -> CPU float images in [0, 1], [N, 3, S, S]."""
    model.eval()
    out = [model.decode(z[start:start + batch_size].to(device)).float().cpu()
           for start in range(0, len(z), batch_size)]
    if not out:
        return torch.empty(0, 3, model.image_size, model.image_size)
    return torch.cat(out)


@torch.inference_mode()
def reconstruct(model: FaceVAE, images: torch.Tensor, device: torch.device, sample: bool = False,
                generator: torch.Generator | None = None,
                batch_size: int = EVAL_BATCH) -> torch.Tensor:
    """uint8 faces -> CPU reconstructions in [0, 1]: decode(mu), or decode(mu + sigma * eps) if
    `sample` (eps drawn on the CPU from `generator`, so a seed gives the same faces on any device)."""
    model.eval()
    out = torch.empty(len(images), 3, model.image_size, model.image_size)
    for start in range(0, len(images), batch_size):
        mu, logvar = model.encode(to_unit(images[start:start + batch_size].to(device)))
        z = reparameterize(mu, logvar, torch.randn(mu.shape, generator=generator).to(device)) \
            if sample else mu
        out[start:start + len(z)] = model.decode(z)  # straight from the device into place
    return out


# -- figures ----------------------------------------------------------------------------------
def save_png(image: torch.Tensor, path: Path) -> Path:
    """One [3, H, W] image in [0, 1] as an 8-bit PNG. zlib level 1: about 3x faster to write
    than Pillow's default and still lossless, which matters when a folder of faces is written."""
    from PIL import Image

    pixels = image.detach().mul(255).add_(0.5).clamp_(0, 255).to("cpu", torch.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.permute(1, 2, 0).numpy()).save(path, format="PNG", compress_level=1)
    return path


def save_grid(images: torch.Tensor, path: Path, columns: int) -> Path:
    """A batch [N, 3, H, W] as a grid with white 2-pixel gaps."""
    from torchvision.utils import make_grid

    return save_png(make_grid(images, nrow=columns, padding=2, pad_value=1.0), path)


def side_by_side(originals: torch.Tensor, reconstructions: torch.Tensor, columns: int = 8) -> torch.Tensor:
    """The report's Figure 9: a grid of originals, a white gap, the same grid reconstructed."""
    from torchvision.utils import make_grid

    left = make_grid(originals, nrow=columns, padding=2, pad_value=1.0)
    right = make_grid(reconstructions, nrow=columns, padding=2, pad_value=1.0)
    gap = torch.ones(3, left.shape[1], max(4, originals.shape[-1] // 4))
    return torch.cat([left, gap, right], dim=2)


def alternating(originals: torch.Tensor, reconstructions: torch.Tensor) -> torch.Tensor:
    """The report's Figure 10 order: original, reconstruction, original, ... (pairs in columns)."""
    return torch.stack([originals, reconstructions], dim=1).flatten(0, 1)


@dataclass
class VAETask:
    """BCE + KL training of the report's VAE; picks best.pt by validation loss."""

    faces: FaceSplits
    recipe: Recipe
    device: torch.device
    latent_dim: int = 256
    val_fraction: float = 0.1
    precision: torch.dtype | None = None  # autocast dtype; None = fp32

    kind = "vae"
    best_metric = "val_loss"
    best_mode = "min"

    def __post_init__(self) -> None:
        size = self.recipe.image_size
        if self.faces.train.shape[-1] != size:
            raise ValueError(f"faces are {self.faces.train.shape[-1]} px, the recipe wants {size}")
        self.train_x = self.faces.train.to(self.device)
        self.val_x = self.faces.val.to(self.device)
        # The Trainer may replace self.model by a compiled or DDP-wrapped view for step();
        # evaluation and figures use the plain module (same parameters) for encode/decode.
        self.vae = FaceVAE(image_size=size, latent_dim=self.latent_dim)
        self.model = self.vae

    def batches(self, epoch: int) -> list[torch.Tensor]:
        """A seeded permutation in batches; a last batch of one joins the one before it
        (BatchNorm cannot train on a single image when the feature map is 1x1)."""
        generator = torch.Generator().manual_seed(self.recipe.seed * 100_003 + epoch)
        order = torch.randperm(len(self.train_x), generator=generator)
        chunks = list(order.split(self.recipe.batch_size))
        if len(chunks) > 1 and len(chunks[-1]) == 1:
            chunks[-2:] = [torch.cat(chunks[-2:])]
        return chunks

    def step(self, batch: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        x = to_unit(self.train_x[batch.to(self.device, non_blocking=True)])
        with autocast(self.device, self.precision):
            logits, mu, logvar = self.model(x)
        bce, kl = vae_loss_terms(logits, x, mu, logvar)  # in fp32 whatever the autocast
        loss = (bce + kl).mean()
        sums = {"loss": (bce + kl).detach().sum(), "bce": bce.detach().sum(),
                "kl": kl.detach().sum(), "count": torch.tensor(float(len(x)))}
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
        return {"val_loss": (totals["bce"] + totals["kl"]) / n, "val_bce": totals["bce"] / n,
                "val_kl": totals["kl"] / n, "val_psnr": totals["psnr"] / n,
                "val_ssim": totals["ssim"] / n}

    def meta(self) -> dict[str, Any]:
        return {
            "architecture": {"name": "FaceVAE", "image_size": self.recipe.image_size,
                             "latent_dim": self.latent_dim},
            "preprocessing": preprocessing(self.recipe.image_size),
            "data": self.faces.info(self.val_fraction),
        }

    def after_epoch(self, run_dir: Path, epoch: int) -> None:
        """reconstructions/epoch_NNNN.png (validation faces over their reconstructions) and
        the loss and PSNR curves so far."""
        from fmtool.analysis import plots
        from fmtool.train import read_metrics

        originals = self.val_x[:GRID_PAIRS].cpu()
        recons = reconstruct(self.vae, originals, self.device)
        save_grid(torch.cat([to_unit(originals), recons]),
                  run_dir / GRID_FOLDER / f"epoch_{epoch:04d}.png", columns=len(originals))
        history = read_metrics(run_dir)
        plots.curves(history, [("train_loss", "train"), ("val_loss", "validation")],
                     "BCE + KL per image", "Loss per epoch", run_dir / "loss_curve.png")
        plots.curves(history, [("val_psnr", "validation")], "PSNR (dB)",
                     "Validation reconstruction PSNR", run_dir / "psnr_curve.png")
