"""How a CNN checkpoint does on real photos: accuracy, per-class accuracy and confusion.

    python benchmarks/bench_photos.py CHECKPOINT [--photos DIR] [--invert auto] [--single-view]
                                      [--limit N] [--json]

The folder holds photos and a labels.csv with at least the columns `file` (relative to the
folder) and `fmnist_label` (the Fashion-MNIST class index), as ../shared/data/clothing-photos
does. Every photo goes through what `fmtool classify` does (the same preprocessing and model);
a prediction outside the folder's classes counts as wrong and shows in the "other" column.
Speed is the photos classified per second (preparation and model, after the model is loaded
once before the clock starts).
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_PHOTOS = REPO.parent / "shared" / "data" / "clothing-photos"


def read_labels(folder: Path) -> list[tuple[Path, int]]:
    with open(folder / "labels.csv", newline="") as handle:
        return [(folder / row["file"], int(row["fmnist_label"])) for row in csv.DictReader(handle)]


def score_photos(checkpoint: Path, folder: Path, invert: str = "auto",
                 limit: int | None = None, single_view: bool = False) -> dict[str, Any]:
    """Classifies the labelled photos in `folder` with `checkpoint`; returns the figures."""
    from fmtool import CNN
    from fmtool.data.fashion import CLASSES

    labelled = read_labels(folder)[:limit]
    cnn = CNN.load(checkpoint, device="cpu")
    cnn.classify([labelled[0][0]])  # the imports a first photo loads are not photo time
    start = time.perf_counter()
    results = [result.to_dict() for result in cnn.classify(
        [path for path, _ in labelled], invert=invert, single_view=single_view)]
    seconds = time.perf_counter() - start
    classes = sorted({label for _, label in labelled})
    names = [CLASSES[label] for label in classes]
    confusion = {name: dict.fromkeys([*names, "other"], 0) for name in names}
    for (path, label), result in zip(labelled, results):
        if "error" in result:
            raise SystemExit(f"{path}: {result['error']}")
        guess = result["predictions"][0]["label"]
        confusion[CLASSES[label]][guess if guess in names else "other"] += 1
    per_class = {name: row[name] / max(sum(row.values()), 1) for name, row in confusion.items()}
    correct = sum(row[name] for name, row in confusion.items())
    return {"checkpoint": str(checkpoint), "single_view": single_view,
            "photos": len(labelled), "correct": correct,
            "accuracy": correct / max(len(labelled), 1), "per_class_accuracy": per_class,
            "confusion": confusion, "seconds": round(seconds, 2),
            "photos_per_second": round(len(labelled) / max(seconds, 1e-9), 2)}


def _print(report: dict[str, Any]) -> None:
    views = " (one view each)" if report["single_view"] else ""
    print(f"{report['checkpoint']}{views}: {report['correct']} of {report['photos']} photos right, "
          f"accuracy {report['accuracy']:.3f}, {report['photos_per_second']:.2f} photos/s "
          f"({report['seconds']:.1f} s)")
    names = list(report["confusion"])
    columns = [*names, "other"]
    print(f"{'true / predicted':<18}" + "".join(f"{c[:11]:>12}" for c in columns)
          + f"{'accuracy':>10}")
    for name in names:
        row = report["confusion"][name]
        print(f"{name:<18}" + "".join(f"{row[c]:>12}" for c in columns)
              + f"{report['per_class_accuracy'][name]:>10.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path, help="a CNN .pt file")
    parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS,
                        help="folder with labels.csv (default: ../shared/data/clothing-photos)")
    parser.add_argument("--invert", default="auto", choices=["auto", "always", "never"])
    parser.add_argument("--limit", type=int, help="only the first N photos of labels.csv")
    parser.add_argument("--single-view", action="store_true",
                        help="prepare each photo once, as `fmtool classify --single-view`")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    report = score_photos(args.checkpoint, args.photos, args.invert, args.limit, args.single_view)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print(report)


if __name__ == "__main__":
    main()
