"""The study's headline runs on one GPU in one call, and one table of what they reached.

Each run is `CNN.train` or `VAE.train`, the run `fmtool train` makes, with its defaults (autocast
precision, channels_last, the step as a CUDA graph where it can be, compiled on CUDA otherwise):
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
import contextlib
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

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


def run_cnn(plan: Plan, name: str, fashion_dir: Path | None, device: str, deadline: float,
            tiny: bool) -> dict[str, Any]:
    """One CNN row: `CNN.train` as `fmtool train cnn` runs it, until its epochs or `deadline`."""
    from fmtool import CNN
    from fmtool.cli.output import TERMINAL
    from fmtool.engine.runs import read_metrics

    limits = {"limit": 1000, "test_limit": 500} if tiny else {}
    cnn = CNN.train(plan.recipe, name=name, data_dir=fashion_dir, device=device,
                    time_limit=deadline - time.monotonic(), feedback=TERMINAL, **limits,
                    **plan.overrides)
    history, recipe = read_metrics(cnn.checkpoint.parent), cnn.meta["recipe"]
    row = {"planned_epochs": recipe["epochs"], "width": recipe["width"],
           "variant": recipe["variant"], "stopped_early": len(history) < recipe["epochs"],
           **speed(history)}
    if history:
        peak = max(history, key=lambda r: r["test_acc"])
        row.update(final_test_acc=history[-1]["test_acc"], best_test_acc=peak["test_acc"],
                   best_test_epoch=peak["epoch"])
        if "val_acc" in history[0]:  # the honest pick: on held-out training images
            picked = max(history, key=lambda r: r["val_acc"])
            row.update(picked_on_val_test_acc=picked["test_acc"], picked_epoch=picked["epoch"])
    return row


def vae_recipe(plan: Plan) -> Any:
    from fmtool.vae.recipes import RECIPES

    return RECIPES[plan.recipe].with_overrides(**plan.overrides).check()


def vae_limits(tiny: bool) -> dict[str, int]:
    return {"limit": 32, "val_limit": 8} if tiny else {}


def prepare_faces(plan: Plan, faces_dir: Path | None, tiny: bool) -> dict[str, Any]:
    """The VAE's faces split and decoded into fmtool's face cache before any timed run (the VAE's
    run then reads them from there): `faces` (how many) or `error`, and `seconds` it took."""
    from fmtool.cli.output import TERMINAL
    from fmtool.data.faces import load_face_splits
    from fmtool.errors import UserError

    begun = time.monotonic()
    recipe = vae_recipe(plan)
    try:
        faces = load_face_splits(faces_dir, recipe.image_size, recipe.val_fraction, recipe.seed,
                                 feedback=TERMINAL, **vae_limits(tiny))
        prepared: dict[str, Any] = {"faces": len(faces.train) + len(faces.val)}
    except (UserError, OSError, RuntimeError) as exc:  # the VAE's row says it; the CNN runs go on
        prepared = {"error": f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200]}"}
    prepared["seconds"] = round(time.monotonic() - begun, 2)
    return prepared


def run_vae(plan: Plan, name: str, prepared: dict[str, Any], faces_dir: Path | None, device: str,
            deadline: float, tiny: bool) -> dict[str, Any]:
    """The VAE row: `VAE.train` as `fmtool train vae` runs it, not compiled (within a few minutes
    a compile costs more than it saves), until its epochs or `deadline`."""
    from fmtool import VAE
    from fmtool.cli.output import TERMINAL
    from fmtool.engine.runs import read_metrics
    from fmtool.errors import UserError

    if "error" in prepared:
        raise UserError(prepared["error"])
    vae = VAE.train(plan.recipe, name=name, data_dir=faces_dir, device=device, compile="off",
                    time_limit=deadline - time.monotonic(), feedback=TERMINAL,
                    **vae_limits(tiny), **plan.overrides)
    history, recipe = read_metrics(vae.checkpoint.parent), vae.meta["recipe"]
    row = {"planned_epochs": recipe["epochs"], "image_size": recipe["image_size"],
           "faces": prepared["faces"], "stopped_early": len(history) < recipe["epochs"],
           **speed(history)}
    if history:
        row.update(final_val_psnr=history[-1]["val_psnr"], final_val_ssim=history[-1]["val_ssim"],
                   final_val_loss=history[-1]["val_loss"])
    return row


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

    device = choose_device(args.device)
    work = args.work or Path(tempfile.mkdtemp(prefix="gpu_study-"))
    print(f"gpu_study on {describe(device)}, torch {torch.__version__}, precision "
          f"{precision_name(choose_precision('auto', device))}, {args.minutes:g} min", file=sys.stderr)
    load_fashion_mnist(args.fashion_dir)  # no data set is one line before any run
    todo = plans(args.tiny)
    vae_plans = [plan for plan in todo if plan.kind == "vae"]
    with fmtool_home(work):
        rows, prepared = run_plans(todo, vae_plans, args, str(device), budget_end)
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


@contextlib.contextmanager
def fmtool_home(work: Path) -> Iterator[None]:
    """fmtool's home (runs, caches) in `work` while the study runs: its run folders are
    work/data/runs/<kind>/<N-kind-recipe>."""
    before = os.environ.get("FMTOOL_HOME")
    os.environ["FMTOOL_HOME"] = str(work)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("FMTOOL_HOME")
        else:
            os.environ["FMTOOL_HOME"] = before


def run_plans(todo: list[Plan], vae_plans: list[Plan], args: argparse.Namespace, device: str,
              budget_end: float) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Each plan's row, in order, each run given the time left but a reserve for those after it;
    and how the faces were prepared."""
    from fmtool.errors import UserError

    prepared = prepare_faces(vae_plans[0], args.faces_dir, args.tiny) if vae_plans else {}
    if vae_plans:
        what = f"{prepared['faces']:,} faces" if "faces" in prepared else prepared["error"]
        print(f"face cache: {what} in {prepared['seconds']:.1f} s, before the timed runs",
              file=sys.stderr)
    rows: list[dict[str, Any]] = []
    for index, plan in enumerate(todo):
        deadline = budget_end - args.reserve * 60 * (len(todo) - 1 - index)
        begun = time.monotonic()
        row: dict[str, Any] = {"label": plan.label, "recipe": plan.recipe, "kind": plan.kind}
        name = f"{index + 1}-{plan.kind}-{plan.recipe}"
        try:
            if begun >= deadline:
                raise UserError("no time left")
            if plan.kind == "cnn":
                row.update(run_cnn(plan, name, args.fashion_dir, device, deadline, args.tiny))
            else:
                row.update(run_vae(plan, name, prepared, args.faces_dir, device, deadline,
                                   args.tiny))
        except (UserError, RuntimeError) as exc:  # no data, no time, no memory: the rest counts
            row["error"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200]}"
        row["minutes"] = round((time.monotonic() - begun) / 60, 3)
        rows.append(row)
    return rows, prepared


if __name__ == "__main__":
    from fmtool.errors import UserError

    try:
        main()
    except UserError as exc:  # e.g. no Fashion-MNIST: one line, as fmtool's commands say it
        sys.exit(f"error: {exc}")
