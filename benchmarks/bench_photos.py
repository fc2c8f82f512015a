"""How a CNN checkpoint does on real photos: accuracy, per-class accuracy and confusion.

    python benchmarks/bench_photos.py CHECKPOINT [--compare OTHER] [--photos DIR] [--invert auto]
                                      [--single-view] [--limit N] [--json]

The folder holds photos and a labels.csv with at least the columns `file` (relative to the
folder) and `fmnist_label` (the Fashion-MNIST class index), as ../shared/data/clothing-photos
does. Every photo goes through what `fmtool classify` does (the same preprocessing and model);
a prediction outside the folder's classes counts as wrong and shows in the "other" column.
Speed is the photos classified per second (preparation and model, after the model is loaded
once before the clock starts).

A count on a few hundred photos moves by a few photos between models that are equally good, so
the accuracy comes with its 95% (Wilson) interval, and `--compare OTHER` scores a second
checkpoint on the same photos and tests the difference the way paired results are tested
(McNemar's exact test on the photos only one of the two gets right).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
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
    right = []  # the photos classified right, by their name in the folder
    for (path, label), result in zip(labelled, results):
        if "error" in result:
            raise SystemExit(f"{path}: {result['error']}")
        guess = result["predictions"][0]["label"]
        confusion[CLASSES[label]][guess if guess in names else "other"] += 1
        if guess == CLASSES[label]:
            right.append(str(path.relative_to(folder)))
    per_class = {name: row[name] / max(sum(row.values()), 1) for name, row in confusion.items()}
    correct = len(right)
    return {"checkpoint": str(checkpoint), "single_view": single_view,
            "photos": len(labelled), "correct": correct,
            "accuracy": correct / max(len(labelled), 1),
            "interval_95": wilson_interval(correct, len(labelled)), "per_class_accuracy": per_class,
            "confusion": confusion, "right": right, "seconds": round(seconds, 2),
            "photos_per_second": round(len(labelled) / max(seconds, 1e-9), 2)}


def wilson_interval(correct: int, total: int, z: float = 1.959964) -> tuple[float, float]:
    """The 95% Wilson score interval of an accuracy of `correct` out of `total`: unlike the
    normal approximation it stays inside [0, 1] and is right for small counts."""
    if total == 0:
        return (0.0, 1.0)
    share = correct / total
    centre = (share + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(share * (1 - share) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return (round(centre - half, 4), round(centre + half, 4))


def paired_comparison(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """How two `score_photos` reports on the same photos differ: the photos only the first gets
    right, only the second, and McNemar's exact two-sided p-value, the chance of a split at
    least this uneven between two equally good models (the photos both get right or wrong
    say nothing about which is better)."""
    first_right, second_right = set(first["right"]), set(second["right"])
    only_first, only_second = len(first_right - second_right), len(second_right - first_right)
    discordant = only_first + only_second
    tail = sum(math.comb(discordant, k) for k in range(min(only_first, only_second) + 1))
    return {"only_first": only_first, "only_second": only_second,
            "p_value": min(1.0, 2 * tail / 2 ** discordant) if discordant else 1.0}


def _print(report: dict[str, Any]) -> None:
    views = " (one view each)" if report["single_view"] else ""
    low, high = report["interval_95"]
    print(f"{report['checkpoint']}{views}: {report['correct']} of {report['photos']} photos right, "
          f"accuracy {report['accuracy']:.3f} (95% interval {low:.3f} to {high:.3f}), "
          f"{report['photos_per_second']:.2f} photos/s ({report['seconds']:.1f} s)")
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
    parser.add_argument("--compare", type=Path, metavar="OTHER",
                        help="a second CNN .pt file, scored on the same photos and compared")
    parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS,
                        help="folder with labels.csv (default: ../shared/data/clothing-photos)")
    parser.add_argument("--invert", default="auto", choices=["auto", "always", "never"])
    parser.add_argument("--limit", type=int, help="only the first N photos of labels.csv")
    parser.add_argument("--single-view", action="store_true",
                        help="prepare each photo once, as `fmtool classify --single-view`")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    reports = [score_photos(checkpoint, args.photos, args.invert, args.limit, args.single_view)
               for checkpoint in (args.checkpoint, args.compare) if checkpoint is not None]
    comparison = paired_comparison(*reports) if len(reports) == 2 else None
    if args.json:
        print(json.dumps(reports[0] if comparison is None else
                         {"first": reports[0], "second": reports[1], "comparison": comparison},
                         indent=2))
        return
    for report in reports:
        _print(report)
    if comparison is not None:
        print(f"only the first right: {comparison['only_first']}, only the second right: "
              f"{comparison['only_second']}; McNemar's exact p = {comparison['p_value']:.3f}")


if __name__ == "__main__":
    main()
