"""The study's headline runs on one GPU in one call, and one table of what they reached.

Each run goes through fmtool's own training task and Trainer (what `fmtool train` runs, with the
CLI's defaults: autocast precision, channels_last, the step as a CUDA graph where it can be):
1. `paper` (Table 1, the report's protocol) with the author's network, `--variant code`;
2. `paper` with the network the report's text describes, `--variant text`;
3. `strong` at full width (its best epoch picked on 5,000 held-out training images);
4. the VAE's `paper` recipe (Table 3, 224 px) for as many epochs as the time left allows.
The CNN rows give the final epoch's test accuracy (nothing selected), the best test accuracy over
the epochs (the report's measure: the epoch chosen on the test set) and, where images are held
out, the test accuracy of the epoch picked on them; the VAE row its validation PSNR and SSIM.

Time: --minutes from the script's start, data loading included. The faces are decoded into
fmtool's cache (224 px JPEG decoding, a minute or more for LFW the first time) before the timed
runs, and that time is reported on its own line, so the VAE's minutes are training. A CNN run
may use the time left but a reserve (--reserve) for each run after it; the VAE gets the rest. A
run stops at the end of an epoch when one more (as long as the last one) would not fit, or at
its deadline mid-epoch; the table then says so ("23/60 (stopped at the deadline)") and the JSON
gives `planned_epochs` and `stopped_early`. The VAE is not compiled: within a few minutes a
compile costs more than it saves.

    python benchmarks/gpu_study.py --out study.json --fashion-dir DIR --faces-dir DIR
    python benchmarks/gpu_study.py --tiny --device cpu     # end to end in seconds: few images,
                                                           # one epoch, narrow CNN, 32 px faces
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


@dataclass(frozen=True)
class Plan:
    """One row of the study: which recipe, changed how."""

    label: str
    kind: str  # "cnn" or "vae"
    recipe: str
    overrides: dict[str, Any]


def plans(tiny: bool) -> list[Plan]:
    """The four runs; `tiny` shrinks each to seconds on a CPU (the same code paths)."""
    cnn = {"epochs": 1, "width": 0.0625} if tiny else {}
    vae = {"epochs": 2, "image_size": 32, "latent_dim": 16, "batch_size": 8} if tiny else {}
    return [Plan("paper, code", "cnn", "paper", {"variant": "code", **cnn}),
            Plan("paper, text", "cnn", "paper", {"variant": "text", **cnn}),
            Plan("strong", "cnn", "strong", {"width": 1.0, **cnn}),
            Plan("vae paper", "vae", "paper", vae)]


def deadline_stop(trainer: Any, deadline: float,
                  clock: Callable[[], float] = time.monotonic) -> Callable[[], bool]:
    """A Trainer's `should_stop` for a deadline (a `clock` time): at an epoch's end, whether one
    more epoch as long as the last (figures and checkpoints included) would end past it; within
    an epoch, whether it has passed. Make it just before `fit`: the first epoch is timed from then."""
    last = clock()

    def stop() -> bool:
        nonlocal last
        now = clock()
        if trainer.state.step:  # within an epoch
            return now > deadline
        took, last = now - last, now
        return now + took > deadline

    return stop


def run_cnn(plan: Plan, data: Any, device: Any, deadline: float, folder: Path,
            tiny: bool) -> dict[str, Any]:
    from fmtool.cli.output import TERMINAL
    from fmtool.cnn.recipes import RECIPES
    from fmtool.cnn.task import CNNTask
    from fmtool.engine.device import choose_precision, seed_everything
    from fmtool.engine.graphs import use_graph

    recipe = RECIPES[plan.recipe].with_overrides(**plan.overrides).check()
    seed_everything(recipe.seed)
    limits = {"limit": 1000, "test_limit": 500} if tiny else {}
    task = CNNTask(data, recipe, device, precision=choose_precision("auto", device), **limits)
    history, stopped = fit(task, recipe, device, deadline, folder,
                           cuda_graph=use_graph("auto", device, task), feedback=TERMINAL)
    row = {"planned_epochs": recipe.epochs, "width": recipe.width, "variant": recipe.variant,
           "stopped_early": stopped, **speed(history)}
    if history:
        peak = max(history, key=lambda r: r["test_acc"])
        row.update(final_test_acc=history[-1]["test_acc"], best_test_acc=peak["test_acc"],
                   best_test_epoch=peak["epoch"])
        if task.best_metric == "val_acc":  # the honest pick: on held-out training images
            picked = max(history, key=lambda r: r["val_acc"])
            row.update(picked_on_val_test_acc=picked["test_acc"], picked_epoch=picked["epoch"])
    return row


def vae_recipe(plan: Plan) -> Any:
    from fmtool.vae.recipes import RECIPES

    return RECIPES[plan.recipe].with_overrides(**plan.overrides).check()


def prepare_faces(plan: Plan, faces_dir: Path | None, tiny: bool) -> dict[str, Any]:
    """The VAE's faces split and decoded (into fmtool's face cache, the first time) before any
    timed run: `faces` (the FaceSplits) or `error`, and `seconds` it took."""
    from fmtool.cli.output import TERMINAL
    from fmtool.data.faces import load_face_splits
    from fmtool.errors import UserError

    begun = time.monotonic()
    recipe = vae_recipe(plan)
    limits = {"limit": 32, "val_limit": 8} if tiny else {}
    try:
        faces = load_face_splits(faces_dir, recipe.image_size, recipe.val_fraction, recipe.seed,
                                 feedback=TERMINAL, **limits)
        prepared: dict[str, Any] = {"faces": faces}
    except (UserError, OSError, RuntimeError) as exc:  # the VAE's row says it; the CNN runs go on
        prepared = {"error": f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200]}"}
    prepared["seconds"] = round(time.monotonic() - begun, 2)
    return prepared


def run_vae(plan: Plan, prepared: dict[str, Any], device: Any, deadline: float,
            folder: Path) -> dict[str, Any]:
    from fmtool.cli.output import TERMINAL
    from fmtool.engine.device import choose_precision, seed_everything
    from fmtool.errors import UserError
    from fmtool.vae.task import VAETask

    if "error" in prepared:
        raise UserError(prepared["error"])
    recipe = vae_recipe(plan)
    faces = prepared["faces"]
    seed_everything(recipe.seed)
    task = VAETask(faces, recipe, device, precision=choose_precision("auto", device))
    history, stopped = fit(task, recipe, device, deadline, folder, cuda_graph=False,
                           feedback=TERMINAL)
    row = {"planned_epochs": recipe.epochs, "image_size": recipe.image_size,
           "faces": len(faces.train) + len(faces.val), "stopped_early": stopped,
           **speed(history)}
    if history:
        row.update(final_val_psnr=history[-1]["val_psnr"], final_val_ssim=history[-1]["val_ssim"],
                   final_val_loss=history[-1]["val_loss"])
    return row


def fit(task: Any, recipe: Any, device: Any, deadline: float, folder: Path, cuda_graph: bool,
        feedback: Any) -> tuple[list[dict[str, Any]], bool]:
    """Trains until the recipe's epochs or the deadline; the history, and whether it stopped early."""
    from fmtool.engine.trainer import Trainer, TrainingInterrupted

    trainer = Trainer(task, recipe, folder, device, cuda_graph=cuda_graph, channels_last=True,
                      feedback=feedback)
    trainer.should_stop = deadline_stop(trainer, deadline)
    try:
        return trainer.fit(), False
    except TrainingInterrupted:
        return trainer.state.history, True


def speed(history: list[dict[str, Any]]) -> dict[str, Any]:
    """Epochs done and training images/s after the first epoch (which warms up and captures)."""
    steady = [r["images_per_s"] for r in history[1:]] or [r["images_per_s"] for r in history]
    return {"epochs": len(history),
            "images_per_s": round(sum(steady) / len(steady), 1) if steady else None}


COLUMNS = [("run", "label", "{}"), ("variant", "variant", "{}"), ("epochs", "epochs", "{}"),
           ("min", "minutes", "{:.2f}"), ("final test", "final_test_acc", "{:.2%}"),
           ("best test (on test)", "best_test_acc", "{:.2%}"),
           ("picked on val: test", "picked_on_val_test_acc", "{:.2%}"),
           ("val PSNR", "final_val_psnr", "{:.2f}"), ("val SSIM", "final_val_ssim", "{:.4f}"),
           ("img/s", "images_per_s", "{:,.0f}")]


def epochs_cell(row: dict[str, Any]) -> str:
    """Epochs done; against the plan when the deadline stopped the run before it."""
    if row.get("stopped_early"):
        return f"{row['epochs']}/{row['planned_epochs']} (stopped at the deadline)"
    return str(row["epochs"])


def table(rows: list[dict[str, Any]]) -> str:
    """The rows as a plain-text table ("-" where a column does not apply)."""
    cells = [[title for title, _, _ in COLUMNS]]
    for row in rows:
        cells.append([("-" if row.get(key) is None else epochs_cell(row) if key == "epochs"
                       else shape.format(row[key])) for _, key, shape in COLUMNS])
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip()
             for line in cells]
    return "\n".join(lines + [f"{row['label']}: {row['error']}" for row in rows if "error" in row])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="also write the table as JSON here")
    parser.add_argument("--minutes", type=float, default=11.5,
                        help="time for the whole study, data loading included (default 11.5, "
                             "leaving half a minute of a 12-minute budget to start Python)")
    parser.add_argument("--reserve", type=float, default=1.5,
                        help="minutes a CNN run leaves for each run after it (default 1.5)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--fashion-dir", type=Path,
                        default=SHARED / "fashion-mnist" if (SHARED / "fashion-mnist").is_dir() else None)
    parser.add_argument("--faces-dir", type=Path,
                        default=SHARED / "lfw" if (SHARED / "lfw").is_dir() else None)
    parser.add_argument("--work", type=Path, help="folder for the run folders (default: a temporary one)")
    parser.add_argument("--tiny", action="store_true",
                        help="few images, one epoch, a narrow CNN, 32 px faces: seconds on a CPU")
    args = parser.parse_args(argv)
    start = time.monotonic()
    budget_end = start + args.minutes * 60

    import torch

    from fmtool.data.fashion import load_fashion_mnist
    from fmtool.engine.device import choose_device, choose_precision, describe, precision_name
    from fmtool.errors import UserError

    device = choose_device(args.device)
    work = args.work or Path(tempfile.mkdtemp(prefix="gpu_study-"))
    print(f"gpu_study on {describe(device)}, torch {torch.__version__}, precision "
          f"{precision_name(choose_precision('auto', device))}, {args.minutes:g} min", file=sys.stderr)
    fashion = load_fashion_mnist(args.fashion_dir)
    todo = plans(args.tiny)
    vae_plans = [plan for plan in todo if plan.kind == "vae"]
    prepared = prepare_faces(vae_plans[0], args.faces_dir, args.tiny) if vae_plans else {}
    if vae_plans:
        what = (f"{len(prepared['faces'].train) + len(prepared['faces'].val):,} faces"
                if "faces" in prepared else prepared["error"])
        print(f"face cache: {what} in {prepared['seconds']:.1f} s, before the timed runs",
              file=sys.stderr)
    rows: list[dict[str, Any]] = []
    for index, plan in enumerate(todo):
        deadline = budget_end - args.reserve * 60 * (len(todo) - 1 - index)
        begun = time.monotonic()
        row: dict[str, Any] = {"label": plan.label, "recipe": plan.recipe, "kind": plan.kind}
        folder = work / f"{index + 1}-{plan.kind}-{plan.recipe}"
        try:
            if begun >= deadline:
                raise UserError("no time left")
            if plan.kind == "cnn":
                row.update(run_cnn(plan, fashion, device, deadline, folder, args.tiny))
            else:
                row.update(run_vae(plan, prepared, device, deadline, folder))
        except (UserError, RuntimeError) as exc:  # no data, no time, no memory: the rest counts
            row["error"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200]}"
        row["minutes"] = round((time.monotonic() - begun) / 60, 3)
        rows.append(row)
    report = {"device": describe(device), "torch": torch.__version__,
              "precision": precision_name(choose_precision("auto", device)),
              "budget_minutes": args.minutes, "tiny": args.tiny,
              "face_cache_seconds": prepared.get("seconds"),
              "total_minutes": round((time.monotonic() - start) / 60, 3), "runs": rows}
    print(table(rows))
    cache = ("" if prepared.get("seconds") is None
             else f", {prepared['seconds']:.1f} s of it decoding faces before the runs")
    print(f"total {report['total_minutes']:.2f} min on {report['device']}{cache}")
    if args.out is not None:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    from fmtool.errors import UserError

    try:
        main()
    except UserError as exc:  # e.g. no Fashion-MNIST: one line, as fmtool's commands say it
        sys.exit(f"error: {exc}")
