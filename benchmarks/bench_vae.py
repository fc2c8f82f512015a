"""VAE throughput: fmtool's engine beside a plain PyTorch loop, in the same process.

Training: fmtool's Trainer running the VAETask (progress bar, metric sums, Ctrl-C checks) against
a bare Adam loop over the same model (same initial weights), the same random uint8 faces, the
same loss and batch order. The engine's validation and per-epoch figures are switched off so
both sides time the same work; each side runs one warm-up epoch, then one timed epoch.
Reconstruction: `fmtool.vae.task.reconstruct` (what `fmtool reconstruct` calls per batch) against
a bare `decode(encode(x).mu)` loop. `--files N` also times the whole `reconstruct` command path
(JPEG decoding, crop, model, PNGs, grids, CSV) on N synthetic 250x250 JPEGs.

Usage: python benchmarks/bench_vae.py [--sizes 64 224] [--batches 3] [--batch-size 16]
                                      [--files 0] [--device auto] [--precision fp32|bf16]
`--precision bf16` runs both sides' forward passes under the same autocast.
The default is quick (a few batches); raise --batches and --batch-size for steadier numbers.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from fmtool.data.faces import FaceSplits, to_unit
from fmtool.engine.device import autocast, choose_device, describe
from fmtool.engine.trainer import Trainer
from fmtool.models.vae import FaceVAE, vae_loss_terms
from fmtool.vae.inference import reconstruct
from fmtool.vae.recipes import RECIPES as VAE_RECIPES
from fmtool.vae.recipes import VAERecipe as Recipe
from fmtool.vae.task import VAETask

LATENT = 256


class _UnvalidatedTask(VAETask):
    """The real task with validation and figures off: only the training steps are timed."""

    def evaluate(self, model: torch.nn.Module) -> dict[str, float]:
        return {"val_loss": 0.0}

    def after_epoch(self, run_dir: Path, epoch: int) -> None:
        return None


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _faces(count: int, size: int) -> torch.Tensor:
    return torch.randint(0, 256, (count, 3, size, size), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(0))


def engine_training(recipe: Recipe, images: torch.Tensor, device: torch.device,
                    precision: torch.dtype | None) -> float:
    splits = FaceSplits(train=images, val=images[:2], train_people=1, val_people=1,
                        source=Path("random"))
    torch.manual_seed(0)
    task = _UnvalidatedTask(splits, recipe, device, precision=precision)
    with tempfile.TemporaryDirectory() as folder:
        history = Trainer(task, recipe, Path(folder) / "run", device).fit()
    return history[-1]["images_per_s"]


def plain_training(recipe: Recipe, images: torch.Tensor, device: torch.device,
                   precision: torch.dtype | None) -> float:
    torch.manual_seed(0)
    model = FaceVAE(recipe.image_size, LATENT).to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    data = images.to(device)
    rate = 0.0
    for epoch in range(recipe.epochs):  # the first epoch warms up
        order = torch.randperm(len(data), generator=torch.Generator().manual_seed(epoch))
        _sync(device)
        start = time.perf_counter()
        for batch in order.split(recipe.batch_size):
            x = to_unit(data[batch.to(device)])
            with autocast(device, precision):
                logits, mu, logvar = model(x)
            bce, kl = vae_loss_terms(logits, x, mu, logvar)
            loss = (bce + kl).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        _sync(device)
        rate = len(data) / (time.perf_counter() - start)
    return rate


def _timed(fn, count: int, device: torch.device, repeats: int = 3) -> float:
    """Images per second of `fn` after one warm-up call: the best of `repeats` runs."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return count / best


def reconstruction(size: int, images: torch.Tensor, device: torch.device) -> tuple[float, float]:
    torch.manual_seed(0)
    model = FaceVAE(size, LATENT).to(device).eval()

    @torch.inference_mode()
    def plain() -> torch.Tensor:  # the same result: every reconstruction as one CPU tensor
        out = []
        for chunk in images.split(128):
            x = chunk.to(device).float().div_(255)
            out.append(model.decode(model.encode(x)[0]).cpu())
        return torch.cat(out)

    engine = _timed(lambda: reconstruct(model, images, device), len(images), device)
    return engine, _timed(plain, len(images), device)


def command_reconstruction(size: int, files: int, device: torch.device) -> float:
    """The whole `reconstruct` path on synthetic JPEGs, files to files (after one warm-up run)."""
    import numpy as np
    from PIL import Image

    from fmtool import VAE, VAEConfig

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "in").mkdir()
        rng = np.random.default_rng(0)
        for i in range(files):
            pixels = rng.integers(0, 256, (250, 250, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / "in" / f"{i:05d}.jpg", quality=90)
        vae = VAE.from_config(VAEConfig(image_size=size, latent_dim=LATENT), device=device)
        vae.reconstruct_folder(root / "in", root / "warm")
        _sync(device)
        start = time.perf_counter()
        vae.reconstruct_folder(root / "in", root / "out")
        _sync(device)
        return files / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 224])
    parser.add_argument("--batches", type=int, default=3, help="timed batches per measurement")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--files", type=int, default=0, help="also time `reconstruct` on N JPEGs")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    args = parser.parse_args()
    os.environ.setdefault("FMTOOL_HOME", tempfile.mkdtemp(prefix="fmtool-bench-"))

    device = choose_device(args.device)
    precision = torch.bfloat16 if args.precision == "bf16" else None
    print(f"device {describe(device)}, torch {torch.__version__}, batch {args.batch_size}, "
          f"{args.batches} timed batches, {args.precision}")
    print(f"{'size':>5}  {'what':<22}{'fmtool img/s':>14}{'plain img/s':>13}{'ratio':>8}")
    for size in args.sizes:
        recipe = VAE_RECIPES["paper"].with_overrides(epochs=2, image_size=size,
                                                     batch_size=args.batch_size)
        images = _faces(args.batches * args.batch_size, size)
        plain = plain_training(recipe, images, device, precision)
        engine = engine_training(recipe, images, device, precision)
        print(f"{size:>5}  {'train':<22}{engine:>14.1f}{plain:>13.1f}{engine / plain:>8.2f}",
              flush=True)
        engine, plain = reconstruction(size, images, device)
        print(f"{size:>5}  {'reconstruct (tensors)':<22}{engine:>14.1f}{plain:>13.1f}"
              f"{engine / plain:>8.2f}", flush=True)
        if args.files:
            rate = command_reconstruction(size, args.files, device)
            print(f"{size:>5}  {'reconstruct (files)':<22}{rate:>14.1f}{'-':>13}{'-':>8}", flush=True)


if __name__ == "__main__":
    main()
