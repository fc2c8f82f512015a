"""The `fmtool` command line: parses options, calls the engine, prints results.

Heavy libraries (torch, torchvision, scikit-learn, matplotlib) are imported inside the commands,
never at module level, so `fmtool --help` and tab completion stay instant.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperGroup

from fmtool import __version__
from fmtool.cli_common import CompileOpt, DeviceOpt, FashionDirOpt, JsonOpt, NameOpt, PrecisionOpt, ResumeOpt, print_json
from fmtool.errors import UserError
from fmtool.recipes import CNN_RECIPES


class _Group(TyperGroup):
    """Turns every UserError raised below this group into one line on stderr and exit 2."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except UserError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(exc.exit_code) from None


app = typer.Typer(
    cls=_Group,
    name="fmtool",
    help="Train, evaluate and explore the report's Fashion-MNIST CNN and LFW face VAE.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)
train_app = typer.Typer(help="Train a model with the report's recipe (every value overridable).",
                        no_args_is_help=True)
app.add_typer(train_app, name="train")

CheckpointArg = Annotated[Optional[Path], typer.Argument(
    help="A .pt file or a run folder; default: the latest CNN run.", show_default=False)]


def _console():
    from fmtool import console

    return console

@app.callback(invoke_without_command=True)
def _root(version: Annotated[bool, typer.Option("--version", help="Print the version and exit.",
                                                is_eager=True)] = False) -> None:
    if version:
        typer.echo(f"fmtool {__version__}")
        raise typer.Exit()


@app.command()
def info(json_out: JsonOpt = False) -> None:
    """Version, the device fmtool would choose, torch version and where files live."""
    import torch

    from fmtool import paths
    from fmtool.device import choose_device, describe

    device = choose_device("auto")
    data = {
        "fmtool": __version__,
        "torch": torch.__version__,
        "device": describe(device),
        "cache_dir": str(paths.cache_dir()),
        "datasets_dir": str(paths.datasets_dir()),
        "runs_dir": str(paths.runs_dir()),
    }
    if json_out:
        print_json(data)
        return
    for key, value in data.items():
        _console().stdout.print(f"{key:<13} {value}")


def _recipe_help(recipes: dict[str, Any]) -> str:
    return "; ".join(f"{name}: {r.description}" for name, r in recipes.items())


def _recipes_help(recipes: dict[str, Any]) -> str:
    return "\n\n".join(f"[bold]{name}[/]: {r.description}" for name, r in recipes.items())


_TRAIN_CNN_HELP = f"""Train the report's CNN on Fashion-MNIST (downloaded on first use).

Recipes (--recipe):

{_recipes_help(CNN_RECIPES)}

Every value below overrides the recipe's. The best epoch is picked on --val-size training images held out (never on the test set); --val-size 0 picks on test accuracy, the report's own measure. The run folder keeps run.json, metrics.jsonl, last.pt (resumable) and best.pt. Progress goes to stderr.

Ctrl-C stops cleanly with a resumable checkpoint; --resume continues to the same result as an uninterrupted run on the same device. Under torchrun, --batch-size is per process.
"""

Opt = typer.Option
AugmentPanel = "Recipe: augmentation and regularisation"
SchedulePanel = "Recipe: optimisation"


@train_app.command("cnn", help=_TRAIN_CNN_HELP)
def train_cnn(
    recipe: Annotated[str, Opt(help="paper, strong or cpu (see above).")] = "paper",
    epochs: Annotated[Optional[int], Opt(help="Epochs (paper: 100).", min=1, rich_help_panel=SchedulePanel)] = None,
    batch_size: Annotated[Optional[int], Opt(help="Batch size (paper: 64).", min=1, rich_help_panel=SchedulePanel)] = None,
    lr: Annotated[Optional[float], Opt(help="Learning rate; the peak for onecycle (paper: 5e-4).", rich_help_panel=SchedulePanel)] = None,
    weight_decay: Annotated[Optional[float], Opt(help="Weight decay (paper: 1e-3).", rich_help_panel=SchedulePanel)] = None,
    optimizer: Annotated[Optional[str], Opt(help="adam (the report's) or adamw.", rich_help_panel=SchedulePanel)] = None,
    schedule: Annotated[Optional[str], Opt(help="step (StepLR, the report's), onecycle or cosine.", rich_help_panel=SchedulePanel)] = None,
    step_size: Annotated[Optional[int], Opt(help="StepLR period in epochs (paper: 10).", min=1, rich_help_panel=SchedulePanel)] = None,
    gamma: Annotated[Optional[float], Opt(help="StepLR factor (paper: 0.5).", rich_help_panel=SchedulePanel)] = None,
    warmup: Annotated[Optional[float], Opt(help="Warm-up fraction of all batches (onecycle, cosine).", min=0.0, max=1.0, rich_help_panel=SchedulePanel)] = None,
    ema_decay: Annotated[Optional[float], Opt(help="Weight EMA decay per batch; 0 = off.", min=0.0, max=1.0, rich_help_panel=SchedulePanel)] = None,
    seed: Annotated[Optional[int], Opt(help="Random seed (paper: 6).")] = None,
    crop_padding: Annotated[Optional[int], Opt(help="Random crop after padding by N pixels; 0 = off.", min=0, rich_help_panel=AugmentPanel)] = None,
    flip: Annotated[Optional[bool], Opt("--flip/--no-flip", help="Random horizontal flips.", rich_help_panel=AugmentPanel, show_default=False)] = None,
    erase: Annotated[Optional[float], Opt(help="Random-erasing probability; 0 = off.", min=0.0, max=1.0, rich_help_panel=AugmentPanel)] = None,
    label_smoothing: Annotated[Optional[float], Opt(help="Label smoothing; 0 = off.", min=0.0, max=0.5, rich_help_panel=AugmentPanel)] = None,
    tta: Annotated[Optional[bool], Opt("--tta/--no-tta", help="Evaluate on each image and its mirror.", rich_help_panel=AugmentPanel, show_default=False)] = None,
    dropout: Annotated[Optional[float], Opt(help="Rate of the CNN's three dropouts (paper: 0.7).", min=0.0, max=0.95, rich_help_panel=AugmentPanel)] = None,
    width: Annotated[Optional[float], Opt(help="Scale every layer's channels (paper: 1.0).", min=0.05)] = None,
    val_size: Annotated[Optional[int], Opt(help="Training images held out to pick the best epoch (default 5000; a tenth of --limit at most).", min=0)] = None,
    limit: Annotated[Optional[int], Opt(help="Train on a seeded random subset of N images.", min=1)] = None,
    test_limit: Annotated[Optional[int], Opt(help="Evaluate each epoch on N test images only.", min=1)] = None,
    device: DeviceOpt = "auto",
    precision: PrecisionOpt = "auto",
    compile: CompileOpt = "auto",
    data_dir: FashionDirOpt = None,
    name: NameOpt = None,
    resume: ResumeOpt = False,
) -> None:
    from fmtool.cli_common import choose_recipe, run_training

    overrides = dict(epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                     optimizer=optimizer, schedule=schedule, step_size=step_size, gamma=gamma,
                     warmup=warmup, ema_decay=ema_decay, seed=seed, crop_padding=crop_padding,
                     flip=flip, erase=erase, label_smoothing=label_smoothing, tta_flip=tta,
                     dropout=dropout, width=width, val_size=val_size)
    options = {"limit": limit, "test_limit": test_limit, "precision": precision, "compile": compile}
    folder, chosen, options = choose_recipe("cnn", CNN_RECIPES, recipe, name, resume,
                                            overrides, options)

    def build_task(device: Any) -> Any:
        from fmtool.classifier import CNNTask
        from fmtool.data.fashion import load_fashion_mnist
        from fmtool.device import choose_precision

        return CNNTask(load_fashion_mnist(data_dir), chosen, device, limit=options["limit"],
                       test_limit=options["test_limit"],
                       precision=choose_precision(options.get("precision", "auto"), device))

    run_training("cnn", chosen, options, folder, device, resume, build_task)


@app.command("eval")
def eval_(
    checkpoint: CheckpointArg = None,
    json_out: JsonOpt = False,
    limit: Annotated[Optional[int], typer.Option(help="Evaluate on a seeded subset of N test images.", min=1)] = None,
    device: DeviceOpt = "auto",
    precision: PrecisionOpt = "fp32",
    data_dir: FashionDirOpt = None,
) -> None:
    """Test accuracy, per-class accuracy and the confusion matrix of a CNN checkpoint.

    Also writes loss_curve.png, accuracy_curve.png (the report's Figures 3 and 4) and confusion_matrix.png into the checkpoint's run folder.
    """
    from fmtool.device import choose_device, choose_precision
    from fmtool.evaluation import evaluate_checkpoint, write_figures
    from fmtool.paths import resolve_checkpoint

    path = resolve_checkpoint(checkpoint, "cnn")
    chosen = choose_device(device)
    report = evaluate_checkpoint(path, chosen, data_dir, limit, choose_precision(precision, chosen))
    report["figures"] = write_figures(report, path.parent)
    if json_out:
        print_json(report)
        return
    _print_eval_report(report)


def _print_eval_report(report: dict[str, Any]) -> None:
    from rich.table import Table

    out = _console().stdout
    out.print(f"checkpoint {report['checkpoint']} (epoch {report['epoch']})")
    out.print(f"test accuracy [bold]{report['accuracy']:.4f}[/] on {report['images']} images, "
              f"loss {report['loss']:.4f}")
    names = report["class_names"]
    table = Table(title="Confusion matrix (rows: true class, columns: predicted)")
    table.add_column("class", no_wrap=True)
    for index in range(len(names)):
        table.add_column(str(index), justify="right")
    table.add_column("accuracy", justify="right")
    for index, (name, row) in enumerate(zip(names, report["confusion_matrix"])):
        cells = [f"[bold]{v}[/]" if j == index else str(v) for j, v in enumerate(row)]
        table.add_row(f"{index} {name}", *cells, f"{report['per_class_accuracy'][name]:.3f}")
    out.print(table)
    for label, path in report["figures"].items():
        out.print(f"{label}: {path}")


@app.command()
def classify(
    images: Annotated[list[Path], typer.Argument(help="Image files (any format and size Pillow reads).")],
    checkpoint: Annotated[Optional[Path], typer.Option(help="A .pt file or run folder; default: latest CNN run.")] = None,
    top_k: Annotated[int, typer.Option("--top-k", "-k", help="How many labels to print per image.", min=1, max=10)] = 1,
    invert: Annotated[str, typer.Option(help="auto inverts light backgrounds (items must be light on dark).", metavar="auto|always|never")] = "auto",
    json_out: JsonOpt = False,
    device: DeviceOpt = "cpu",
) -> None:
    """Classify images with a CNN checkpoint: one line per image, path<TAB>label<TAB>probability.

    Unreadable files get a one-line error on stderr; the others are still classified, and the exit code is 1 if any failed.
    """
    from fmtool.data.images import INVERT_CHOICES

    if invert not in INVERT_CHOICES:
        raise UserError(f"--invert must be one of {', '.join(INVERT_CHOICES)}")
    from fmtool.classify import classify_files
    from fmtool.device import choose_device
    from fmtool.paths import resolve_checkpoint

    path = resolve_checkpoint(checkpoint, "cnn")
    results = classify_files(images, path, choose_device(device), top_k, invert)
    console = _console()
    failed = 0
    for result in results:
        if "error" in result:
            failed += 1
            console.stderr.print(f"error: {result['path']}: {result['error']}", markup=False)
        elif not json_out:
            cells = [result["path"]]
            for guess in result["predictions"]:
                cells += [guess["label"], f"{guess['probability']:.4f}"]
            sys.stdout.write("\t".join(cells) + "\n")
    if json_out:
        print_json(results)
    if failed:
        raise typer.Exit(1)


from fmtool import commands_project  # noqa: E402

app.command()(commands_project.project)

from fmtool import commands_vae  # noqa: E402

train_app.command("vae")(commands_vae.train_vae)
app.command()(commands_vae.reconstruct)
app.command()(commands_vae.fuse)


def main() -> None:
    """Console entry point (`fmtool`, `python -m fmtool`)."""
    app()
