"""The study's tables: the report's numbers (`published`) beside those fmtool measured, as rows
of text for the HTML and Markdown writers.

Numbers are written as the other commands print them (accuracy to 4 places as `eval` does,
per-class accuracy and separation scores to 3, PSNR to 2 and SSIM to 4 as `reconstruct`), so a
reader can set them beside a terminal. Where `published` holds nothing, the report's cell says
"none recorded".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from fmtool.engine.text import number_or_na
from fmtool.report import published

NONE = "none recorded"


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list[str]]
    note: str = ""
    numeric: set[int] = field(default_factory=set)  # columns aligned right


def percent(value: float) -> str:
    return f"{100 * value:.2f}%"


def accuracy_text(evaluation: dict[str, Any]) -> str:
    correct = correct_count(evaluation)
    return (f"{percent(evaluation['accuracy'])} ({evaluation['accuracy']:.4f}: {correct:,} of "
            f"{evaluation['images']:,})")


def correct_count(evaluation: dict[str, Any]) -> int:
    matrix = evaluation["confusion_matrix"]
    return sum(matrix[i][i] for i in range(len(matrix)))


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def headline(evaluation: dict[str, Any], faces: dict[str, Any] | None) -> Table:
    """The report's figure and fmtool's for what both measure."""
    report_accuracy = (f"{percent(published.PRINTED_ACCURACY)} as printed = "
                       f"{published.CORRECT:,} / {published.PRINTED_DIVISOR:,}; "
                       f"{percent(published.TRUE_ACCURACY)} of {published.TEST_IMAGES:,}")
    rows = [["test accuracy", report_accuracy, accuracy_text(evaluation)],
            ["test loss (cross-entropy)", NONE, f"{evaluation['loss']:.4f}"]]
    note = (f"The report prints {percent(published.PRINTED_ACCURACY)}, but its code divides the "
            f"{published.CORRECT:,} test images it got right by {published.PRINTED_DIVISOR:,} "
            f"(157 batches of 64) instead of {published.TEST_IMAGES:,}: its like-for-like "
            f"figure is {percent(published.TRUE_ACCURACY)}, the one to compare with fmtool's.")
    if faces is not None:
        people = f"{faces['people']:,} held-out {'person' if faces['people'] == 1 else 'people'}"
        held = f"all {faces['faces']:,} faces of the {people}"
        rows += [["PSNR of reconstructions", NONE, f"{faces['psnr']:.2f} dB (mean over {held})"],
                 ["SSIM of reconstructions", NONE, f"{faces['ssim']:.4f} (the same faces)"]]
        note += (" PSNR and SSIM: the mean over every face of the people the VAE's training held "
                 "out, as its model card measures them (Figure 10 shows a sample).")
        if not faces["split_matches"]:
            note += f" Note: {faces['split_note']}."
    return Table("The report's numbers beside fmtool's", ["measure", "the report", "fmtool"],
                 rows, note)


def per_class(evaluation: dict[str, Any]) -> Table:
    rows = [[name, NONE, number_or_na(value)]
            for name, value in evaluation["per_class_accuracy"].items()]
    return Table("Test accuracy per class", ["class", "the report", "fmtool"], rows,
                 "As fmtool eval prints it: the share of each class's test images classified "
                 "right.", numeric={2})


def separation(projections: dict[str, Sequence[dict[str, Any]]]) -> Table:
    """5-NN accuracy and silhouette per method and layer (Figures 5 and 6)."""
    rows = [[item["layer"], method, _score(item["knn_accuracy"]), _score(item["silhouette"])]
            for method, items in projections.items() for item in items]
    return Table("How well the classes separate in 2-D (Figures 5 and 6)",
                 ["layer", "method", "5-NN accuracy", "silhouette"], rows,
                 f"The report: {published.SEPARATION_CLAIM}. 5-NN accuracy: each point "
                 "classified by its 5 nearest neighbours in the picture (1.0 perfect, 0.1 "
                 "chance); silhouette from -1 to 1, higher means tighter, further-apart classes. "
                 "As fmtool project prints them.", numeric={2, 3})


def table2(evaluation: dict[str, Any], name: str, recipe: str | None = None) -> Table:
    """The report's Table 2 and the checkpoint fmtool measured (`name`: its run folder, or
    "bundled"), trained with the recipe named `recipe`."""
    rows = [[model, percent(accuracy), f"the report's Table 2, {published.TABLE2_SOURCE}"]
            for model, accuracy in published.TABLE2]
    rows.append([published.REPORT_MODEL, percent(published.PRINTED_ACCURACY),
                 f"the report's Table 2, as printed ({published.CORRECT:,} / "
                 f"{published.PRINTED_DIVISOR:,}; {percent(published.TRUE_ACCURACY)} of "
                 f"{published.TEST_IMAGES:,} images)"])
    trained = f", recipe {recipe}" if recipe else ", recipe not recorded"
    rows.append([f"fmtool: {name}", percent(evaluation["accuracy"]),
                 f"measured by fmtool on {evaluation['images']:,} test images{trained}"])
    return Table("Table 2: test accuracy on Fashion-MNIST", ["model", "test accuracy", "source"],
                 rows, published.TABLE2_NOTE, numeric={1})


# The settings the report's Tables 1 and 3 list (Adam, its learning rate and weight decay,
# StepLR's step and factor, epochs, batch size, seed, image size, and the VAE's latent size):
# the rest of fmtool's `paper` recipes (variant, val_size, augmentation ...) are fmtool's own.
REPORT_SETTINGS = ("optimizer", "lr", "weight_decay", "schedule", "step_size", "gamma", "epochs",
                   "batch_size", "seed", "image_size", "latent_dim")


def recipes(title: str, reference: dict[str, Any], used: dict[str, Any] | None) -> Table:
    """The report's recipe (Table 1 or 3: the settings of `reference` it lists) beside the one
    the checkpoint was trained with, and the checkpoint's other settings, which the report
    has no value for."""
    used = used or {}
    keys = [k for k in REPORT_SETTINGS if k in reference]
    keys += [k for k in used if k not in keys and k not in ("name", "description")]
    rows = []
    for key in keys:
        mine = str(used[key]) if key in used else "-"
        theirs = str(reference[key]) if key in REPORT_SETTINGS and key in reference else "-"
        rows.append([key, theirs, mine if mine != theirs else f"{mine} (same)"])
    what = f"recipe '{used['name']}'" if "name" in used else "its recipe (not recorded)"
    return Table(title, ["setting", "the report", f"this checkpoint: {what}"], rows,
                 "The report's column holds the settings its table lists (StepLR is schedule "
                 "step); \"-\" there is a setting of fmtool's that the report does not give.")
