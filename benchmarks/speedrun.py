"""Time to the report's accuracy: `fmtool train cnn` run whole for several seeds, as a user runs it.

Each seed is one `fmtool train cnn --recipe R --seed S` process, timed from its start to its end
(start-up, data loading, training, evaluation and checkpoints all counted; the data set is loaded
once before the first run, so a download is not). The best epoch is the one the run picked on its
held-out images, never on the test set. Prints one row per seed, the mean and standard deviation
over the seeds (the bar is the mean, as airbench reports its mean over many runs), and the CPU:
`lscpu`'s model name and whether it has native bf16 (AVX512-BF16 or AMX).

    python benchmarks/speedrun.py                        # the cpu recipe, seeds 6, 7, 8
    python benchmarks/speedrun.py --recipe bundled --seeds 1
    python benchmarks/speedrun.py --seeds 2 -- --limit 600 --epochs 1   # extra train options

Runs are named speedrun-<recipe>-seed<S>-<time> in fmtool's usual run folders.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from fmtool.data import fashion
from fmtool.engine.checkpoint import load_checkpoint
from fmtool.engine.runs import read_metrics, run_dir

TARGET = 0.9417  # the report's model: 9,417 of 10,000 test images


def cpu_name() -> str:
    """lscpu's model name (the machine's CPU), else what the platform says."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        text = ""
    for line in text.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    import platform

    return platform.processor() or "unknown CPU"


def bf16_support() -> str:
    names = [name for name, check in (("AVX512-BF16", "_is_avx512_bf16_supported"),
                                      ("AMX", "_is_amx_tile_supported"))
             if getattr(torch.cpu, check, lambda: False)()]
    return "native bf16 (" + ", ".join(names) + ")" if names else "no native bf16"


def one_run(recipe: str, seed: int, extra: list[str], data_dir: str | None) -> dict[str, Any]:
    """One whole `fmtool train cnn` process; its wall time and what its run folder records."""
    name = f"speedrun-{recipe}-seed{seed}-{time.strftime('%Y%m%d-%H%M%S')}"
    command = [sys.executable, "-m", "fmtool", "train", "cnn", "--recipe", recipe,
               "--seed", str(seed), "--name", name, *extra]
    if data_dir:
        command += ["--data-dir", data_dir]
    start = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"speedrun: seed {seed} failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    folder = run_dir("cnn", name)
    history = read_metrics(folder)
    best = load_checkpoint(folder / "best.pt", expect_kind="cnn").meta
    metrics = best["metrics"]
    trained = [r["images_per_s"] for r in history if "images_per_s" in r]
    return {"seed": seed, "wall_s": round(wall, 1), "epochs": len(history),
            "best_epoch": best["epoch"], "images_per_s": round(statistics.fmean(trained), 1),
            "val_acc": metrics.get("val_acc"), "test_acc": metrics["test_acc"],
            "run": str(folder)}


def spread(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def table(rows: list[dict[str, Any]], recipe: str) -> str:
    def pct(value: float | None) -> str:
        return "-" if value is None else f"{100 * value:.2f}%"

    lines = [f"recipe {recipe} on {cpu_name()} ({bf16_support()}), "
             f"{torch.get_num_threads()} threads, torch {torch.__version__}",
             "| seed | wall time | images/s | best epoch (on val) | val acc | test acc |",
             "| ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['seed']} | {r['wall_s'] / 60:.1f} min | {r['images_per_s']:,.0f} | "
                     f"{r['best_epoch']} of {r['epochs']} | {pct(r['val_acc'])} | "
                     f"{pct(r['test_acc'])} |")
    wall, wall_sd = spread([r["wall_s"] for r in rows])
    rate, rate_sd = spread([r["images_per_s"] for r in rows])
    test, test_sd = spread([r["test_acc"] for r in rows])
    vals = [r["val_acc"] for r in rows if r["val_acc"] is not None]
    val_text = "-"
    if len(vals) == len(rows):
        val, val_sd = spread(vals)
        val_text = f"{100 * val:.2f} ± {100 * val_sd:.2f}%"
    lines.append(f"| mean ± sd | {wall / 60:.1f} ± {wall_sd / 60:.1f} min | "
                 f"{rate:,.0f} ± {rate_sd:,.0f} | | {val_text} | "
                 f"{100 * test:.2f} ± {100 * test_sd:.2f}% |")
    verdict = "reaches" if test >= TARGET else "falls short of"
    lines.append(f"mean test accuracy {100 * test:.2f}% {verdict} the report's 94.17% "
                 f"(9,417 of 10,000)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="cpu")
    parser.add_argument("--seeds", type=int, default=3, help="runs, with seeds 6, 7, 8, ...")
    parser.add_argument("--first-seed", type=int, default=6, help="the report's seed")
    parser.add_argument("--data-dir", default=None, help="the four Fashion-MNIST IDX files")
    parser.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    args, extra = parser.parse_known_args(argv)
    extra = [a for a in extra if a != "--"]
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    # Download (or read) the data once, so that no run's time includes it.
    fashion.load_fashion_mnist(Path(args.data_dir) if args.data_dir else None)
    rows = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        rows.append(one_run(args.recipe, seed, extra, args.data_dir))
        if not args.json:
            print(f"seed {seed}: {rows[-1]['wall_s'] / 60:.1f} min, test "
                  f"{100 * rows[-1]['test_acc']:.2f}%", file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps({"recipe": args.recipe, "cpu": cpu_name(), "bf16": bf16_support(),
                          "threads": torch.get_num_threads(), "torch": torch.__version__,
                          "runs": rows,
                          "mean_test_acc": statistics.fmean(r["test_acc"] for r in rows),
                          "mean_wall_s": statistics.fmean(r["wall_s"] for r in rows)}))
    else:
        print(table(rows, args.recipe))


if __name__ == "__main__":
    main()
