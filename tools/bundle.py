"""Turns a finished run into a model that ships inside fmtool, with its model card.

    python -m tools.bundle cnn RUN_FOLDER --command "fmtool train cnn --recipe bundled ..."
    python -m tools.bundle vae RUN_FOLDER --command "fmtool train vae --recipe cpu ..."
    python -m tools.bundle photos     # the shipped CNN's photo figures, after the photo
                                      # preprocessing changed (its weights stay as they are)

It measures what the card states, on the data it names. CNN: test accuracy on the full
10,000-image Fashion-MNIST test set (with the checkpoint's own TTA setting, as `fmtool eval`
does), the validation accuracy of the selected epoch (from the run), and accuracy on the labelled
photos in ../shared/data/clothing-photos (as benchmarks/bench_photos.py does). VAE: mean PSNR and
SSIM of the reconstructions of the held-out people of its person-disjoint split. Both store their
weights in fp16 (to fit in 3 MB and 10 MB) and carry their run's per-epoch history; every figure
on a card is measured on the file as stored, with the fp32 weights' test accuracy or PSNR beside
it to show what fp16 moved. It then writes fmtool/weights/KIND.pt (weights only, no training
state) and prints the card and its SHA-256.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = REPO / "fmtool" / "weights"
SHARED = REPO.parent / "shared" / "data"


def cnn_card(run: Path, command: str, fashion_dir: Path, photos_dir: Path) -> dict[str, Any]:
    """The CNN's card; its figures are those of the fp16 file written here (see write_bundled),
    with the fp32 weights' test accuracy beside them."""
    from benchmarks.bench_photos import score_photos
    from fmtool import CNN, __version__

    best = CNN.load(run / "best.pt", device="cpu")
    meta = best.meta
    trained = best.evaluate(data_dir=fashion_dir)
    with as_stored("cnn", run) as stored:
        test = CNN.load(stored, device="cpu").evaluate(data_dir=fashion_dir)
        photos = score_photos(stored, photos_dir)
    selected = meta["metrics"]
    return {
        "name": "fmtool bundled Fashion-MNIST CNN",
        "command": command,
        "recipe": described("cnn", meta["recipe"]),
        "epoch": meta["epoch"],
        "data": {**meta["data"], "test_set": "Fashion-MNIST test, all 10,000 images",
                 "photos": "shared clothing-photos, 200 labelled photos of 5 classes"},
        "metrics": {"test_accuracy": round(test.accuracy, 6),
                    "test_correct": round(test.accuracy * test.images),
                    "test_images": test.images,
                    "fp32_test_accuracy": round(trained.accuracy, 6),
                    "val_accuracy": round(selected["val_acc"], 6),
                    "photo_accuracy": round(photos["accuracy"], 6),
                    "photo_per_class": {k: round(v, 4) for k, v in
                                        photos["per_class_accuracy"].items()}},
        "storage": "fp16 weights (loaded into an fp32 model)",
        "selection": "best epoch by validation accuracy on 5,000 held-out training images",
        "training": training_time(run),
        "fmtool_version": __version__,
    }


def vae_card(run: Path, command: str, faces_dir: Path) -> dict[str, Any]:
    """The VAE's card; its figures are those of the fp16 file written here (see write_bundled),
    beside those of the fp32 weights it was made from."""
    from fmtool import VAE, __version__

    best = VAE.load(run / "best.pt", device="cpu")
    meta = best.meta
    trained = best.evaluate(faces_dir)
    with as_stored("vae", run) as path:
        stored = VAE.load(path, device="cpu").evaluate(faces_dir)
    return {
        "name": "fmtool bundled face VAE (64 px)",
        "command": command,
        "recipe": described("vae", meta["recipe"]),
        "epoch": meta["epoch"],
        "data": {**meta["data"], "measured_on": f"{stored['faces']:,} faces of the "
                 f"{stored['people']:,} held-out people (person-disjoint split)"},
        "metrics": {"psnr": round(stored["psnr"], 4), "ssim": round(stored["ssim"], 4),
                    "fp32_psnr": round(trained["psnr"], 4), "fp32_ssim": round(trained["ssim"], 4),
                    "faces": stored["faces"], "people": stored["people"]},
        "storage": "fp16 weights (loaded into an fp32 model)",
        "selection": "best epoch by validation loss (BCE + kl_weight x KL, the objective it "
                     "was trained on) on the held-out people",
        "training": training_time(run),
        "fmtool_version": __version__,
    }


def training_time(run: Path) -> dict[str, Any]:
    """How long the run trained (the sum of its epochs, scoring included), how many epochs (fewer
    than its recipe's where it was stopped) and on what CPU."""
    import platform

    from fmtool.engine.runs import read_metrics

    cpu = platform.processor()
    info = Path("/proc/cpuinfo")
    if info.is_file():
        names = [line.split(":", 1)[1].strip() for line in info.read_text().splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    history = read_metrics(run)
    seconds = sum(record.get("seconds", 0.0) for record in history)
    return {"minutes": round(seconds / 60, 1), "epochs": len(history), "cpu": cpu}


def described(kind: str, recipe: dict[str, Any]) -> dict[str, Any]:
    """The recipe worded as fmtool's recipe of that name is now, when that one has the same
    values: a run trained with flags that the recipe adopted afterwards is described as it was."""
    import dataclasses

    from fmtool.cnn.recipes import RECIPES as CNN_RECIPES
    from fmtool.vae.recipes import RECIPES as VAE_RECIPES

    current = {"cnn": CNN_RECIPES, "vae": VAE_RECIPES}[kind].get(recipe["name"])
    if current is None:
        return recipe
    now = dataclasses.asdict(current)
    if {k: v for k, v in now.items() if k != "description"} != \
            {k: v for k, v in recipe.items() if k != "description"}:
        return recipe
    return {**recipe, "description": current.description}


@contextmanager
def as_stored(kind: str, run: Path) -> Iterator[Path]:
    """The run's best.pt as write_bundled would ship it, in a scratch folder, to measure."""
    with tempfile.TemporaryDirectory() as scratch:
        yield write_bundled(kind, run, {}, Path(scratch))


def write_bundled(kind: str, run: Path, card: dict[str, Any], folder: Path = WEIGHTS) -> Path:
    """best.pt without its training state, with the card; floating weights in fp16."""
    from fmtool.engine.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
    from fmtool.engine.runs import read_metrics

    checkpoint = load_checkpoint(run / "best.pt", expect_kind=kind)
    meta = {k: v for k, v in checkpoint.meta.items() if k not in ("options",)}
    meta["recipe"] = described(kind, meta["recipe"])
    # The run's per-epoch history (a few KB), so that eval and report draw its curves.
    meta["history"] = read_metrics(run)
    meta["card"] = card
    weights = {k: v.half() if v.is_floating_point() else v for k, v in checkpoint.model.items()}
    target = folder / f"{kind}.pt"
    save_checkpoint(target, Checkpoint(meta, weights))
    return target


def remeasure_photos(photos_dir: Path, folder: Path = WEIGHTS) -> dict[str, Any]:
    """The shipped CNN's card with its photo figures measured again, as bench_photos measures
    them with today's preprocessing, written back into the file (weights, recipe and every
    other figure unchanged)."""
    from benchmarks.bench_photos import score_photos
    from fmtool.engine.checkpoint import Checkpoint, load_checkpoint, save_checkpoint

    target = folder / "cnn.pt"
    shipped = load_checkpoint(target, expect_kind="cnn")
    photos = score_photos(target, photos_dir)
    card = shipped.meta["card"]
    card["metrics"].update(photo_accuracy=round(photos["accuracy"], 6),
                           photo_per_class={k: round(v, 4) for k, v in
                                            photos["per_class_accuracy"].items()})
    save_checkpoint(target, Checkpoint(shipped.meta, shipped.model))
    return card


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["cnn", "vae", "photos"])
    parser.add_argument("run", type=Path, nargs="?", help="the run folder (its best.pt is bundled)")
    parser.add_argument("--command", help="the command that trained the run")
    parser.add_argument("--fashion-dir", type=Path, default=SHARED / "fashion-mnist")
    parser.add_argument("--photos", type=Path, default=SHARED / "clothing-photos")
    parser.add_argument("--faces-dir", type=Path, default=SHARED / "lfw" / "lfw-deepfunneled")
    args = parser.parse_args()
    if args.kind == "photos":
        card, target = remeasure_photos(args.photos), WEIGHTS / "cnn.pt"
    elif args.run is None or args.command is None:
        parser.error(f"bundling a {args.kind} needs the run folder and --command")
    else:
        card = (cnn_card(args.run, args.command, args.fashion_dir, args.photos) if args.kind == "cnn"
                else vae_card(args.run, args.command, args.faces_dir))
        target = write_bundled(args.kind, args.run, card)
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    print(json.dumps(card, indent=2))
    print(f"{target.relative_to(REPO)}  {target.stat().st_size:,} bytes  sha256 {digest}")

if __name__ == "__main__":
    main()
