"""The Fashion-MNIST CNN's commands: `train cnn`, `eval`, `classify` and `project`.

Like every cli module, nothing heavy is imported at module level: torch and friends load inside
the commands, so `fmtool --help` stays instant.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from fmtool.choices import Invert, Precision, ProjectionMethod
from fmtool.cli import output
from fmtool.cli.checkpoints import checkpoint_to_use
from fmtool.cli.options import (
    CompileOpt,
    CudaGraphOpt,
    DeviceOpt,
    FashionDirOpt,
    ForceOpt,
    JsonOpt,
    NameOpt,
    PrecisionOpt,
    ResumeOpt,
    choice,
    number_option,
)
from fmtool.cli.recipe_options import recipe_options
from fmtool.cnn import recipes
from fmtool.engine.bounds import Bounds
from fmtool.engine.run_options import CNNRunOptions
from fmtool.engine.text import number_or_na

CheckpointArg = Annotated[Optional[Path], typer.Argument(
    help="A .pt file or a run folder, or builtin (the model that ships with fmtool); default: the latest CNN run, else the bundled model.", show_default=False)]
CheckpointOpt = Annotated[Optional[Path], typer.Option(
    help="A .pt file or run folder, or builtin (the model that ships with fmtool); default: the latest CNN run, else the bundled model.")]
DEFAULT_LAYERS = "conv9,linear1,output"
PER_CLASS_MAX = 1000  # Fashion-MNIST's test set: 1,000 images of each class


def _recipes_help() -> str:
    return "\n\n".join(f"[bold]{name}[/]: {r.description}" for name, r in recipes.RECIPES.items())


TRAIN_HELP = f"""Train the report's CNN on Fashion-MNIST (downloaded on first use).

Recipes (--recipe):

{_recipes_help()}

Every value below overrides the recipe's. With --val-size N the best epoch (best.pt) is picked on N training images held out, never on the test set; with --val-size 0 (the paper recipe's: all 60,000 images, as the report trained) it is picked on test accuracy, as the report did. Either way the run ends with the final epoch's test accuracy and, labelled, the report's measure: the best test accuracy over the epochs. --variant code trains the author's published network (the paper recipe's), text the one the report's text describes (the other recipes'). The run folder keeps run.json, metrics.jsonl, last.pt (resumable) and best.pt. Progress goes to stderr.

Ctrl-C or SIGTERM stops cleanly with a resumable checkpoint (exit status 130 or 143); --resume continues to the same result as an uninterrupted run on the same device. Under torchrun, --batch-size is per process.
"""


@recipe_options(recipes.CNNRecipe, (recipes.PAPER, recipes.CPU))
def train_cnn(
    recipe: Annotated[Optional[str], typer.Option(help="paper, strong, cpu or bundled (see above); default: paper on a CUDA GPU, cpu elsewhere.", show_default=False)] = None,
    limit: Annotated[Optional[int], number_option(CNNRunOptions.bounds("limit"), "limit", "Train on a seeded random subset of N images.")] = None,
    test_limit: Annotated[Optional[int], number_option(CNNRunOptions.bounds("test_limit"), "test_limit", "Evaluate each epoch on N test images only.")] = None,
    device: DeviceOpt = "auto",
    precision: PrecisionOpt = "auto",
    compile: CompileOpt = "auto",
    cuda_graph: CudaGraphOpt = "auto",
    data_dir: FashionDirOpt = None,
    name: NameOpt = None,
    resume: ResumeOpt = False,
    *,
    overrides: dict[str, Any],
) -> None:
    from fmtool.api import CNN
    from fmtool.cli.training import exit_on_stop

    with exit_on_stop("cnn"):
        CNN.train(recipe, device=str(device), precision=str(precision), compile=str(compile),
                  cuda_graph=str(cuda_graph), data_dir=data_dir, name=name, resume=resume,
                  limit=limit, test_limit=test_limit, feedback=output.TERMINAL, **overrides)


def eval_(
    checkpoint: CheckpointArg = None,
    json_out: JsonOpt = False,
    limit: Annotated[Optional[int], typer.Option(help="Evaluate on a seeded subset of N test images.", min=1)] = None,
    device: DeviceOpt = "auto",
    precision: PrecisionOpt = Precision.fp32,
    data_dir: FashionDirOpt = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Folder for the figures; default: the checkpoint's run folder.", file_okay=False)] = None,
    force: ForceOpt = False,
) -> None:
    """Test accuracy, per-class accuracy and the confusion matrix of a CNN checkpoint.

    Also writes loss_curve.png, accuracy_curve.png (the report's Figures 3 and 4) and confusion_matrix.png into the checkpoint's run folder, or into --out.

    In a run folder fmtool made (under its runs folder, see fmtool info) these three files are fmtool's own, and eval rewrites them each time. Anywhere else (--out, or a checkpoint kept outside the runs folder) a file that exists is yours: eval refuses before evaluating, unless --force.
    """
    from fmtool.api import CNN
    from fmtool.cnn.evaluate import plan_figures, write_figures
    from fmtool.engine.runs import checkpoint_history, figures_home

    path = checkpoint_to_use(checkpoint, "cnn")
    home, owned = figures_home(path)
    cnn = CNN.load(path, device=str(device), feedback=output.TERMINAL)
    history = checkpoint_history(path, cnn.meta)
    figures = plan_figures(history, out or home, force or (out is None and owned))
    report = cnn.evaluate(limit, data_dir=data_dir, precision=str(precision)).to_dict()
    report["figures"] = write_figures(report, history, figures)
    if json_out:
        output.print_json(report)
        return
    _print_eval_report(report)


def _print_eval_report(report: dict[str, Any]) -> None:
    from rich.table import Table
    from rich.text import Text

    escape = output.escape
    out = output.stdout
    out.print(f"checkpoint {escape(report['checkpoint'])} (epoch {escape(report['epoch'])})")
    out.print(Text.assemble("test accuracy ", (f"{report['accuracy']:.4f}", "bold"),
                            f" on {report['images']} images, loss {report['loss']:.4f}"))
    names = report["class_names"]
    table = Table(title="Confusion matrix (rows: true class, columns: predicted)")
    table.add_column("class", no_wrap=True)
    for index in range(len(names)):
        table.add_column(str(index), justify="right")
    table.add_column("accuracy", justify="right")
    for index, (name, row) in enumerate(zip(names, report["confusion_matrix"])):
        cells = [Text(str(v), style="bold" if j == index else "") for j, v in enumerate(row)]
        table.add_row(f"{index} {escape(name)}", *cells,
                      number_or_na(report["per_class_accuracy"][name]))
    out.print(table)
    for label, path in report["figures"].items():
        out.print(f"{label}: {escape(path)}")


def classify(
    images: Annotated[list[Path], typer.Argument(help="Image files (any format Pillow reads, up to about 89 million pixels), folders of them, or - to read the paths from standard input.")],
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="Also read the images in the folders' sub-folders.")] = False,
    null: Annotated[bool, typer.Option("--null", "-0", help="With -: the paths on standard input are separated by NUL bytes, as find -print0 writes them (names with newlines survive); else one a line.")] = False,
    checkpoint: CheckpointOpt = None,
    top_k: Annotated[int, typer.Option("--top-k", "-k", help="How many labels to print per image.", min=1, max=10)] = 1,
    invert: Annotated[Invert, choice(Invert, "invert", "Is the item darker than its background (always) or lighter (never)? auto decides per photo. Either way the model gets it light on black, as in Fashion-MNIST.")] = Invert.auto,
    save_input: Annotated[Optional[Path], typer.Option("--save-input", help="Also write the 28x28 picture the model sees (the first of a photo's nine) for each image into this folder, as NNNN_name.png (numbered in the order given).", file_okay=False)] = None,
    single_view: Annotated[bool, typer.Option("--single-view", help="Prepare each photo once instead of nine ways: about 2.5 times faster for a folder, a little less often right (docs/photos.md and docs/speed.md give both figures).")] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite files of the same name in the --save-input folder.")] = False,
    json_out: JsonOpt = False,
    device: DeviceOpt = "auto",
) -> None:
    """Classify images with a CNN checkpoint: one line per image, path<TAB>label<TAB>probability.

    A folder gives its image files (by extension; hidden ones left out) in sorted order, its sub-folders' too with -r; - reads paths from standard input, one a line or NUL-separated with -0 (find shop -name '*.jpg' -print0 | fmtool classify -0 -). Unreadable files get a one-line error on stderr; the others are still classified, and the exit code is 1 if any failed.

    Photos are prepared as Fashion-MNIST prepared its product shots: the background (modelled from the picture's border, so uneven light and shadows go too) is removed, the item is found and trimmed, its longest side scaled to 28 pixels, centred on black, light on dark. Where the search for the item starts and how far its box reaches are each guessed three ways, and the model's answers over the nine pictures are averaged (--single-view: one picture). --save-input shows what the model sees (the first picture).

    Paths and labels are escaped so that each image stays one line of tab-separated columns: a backslash is written \\\\, a tab \\t, a newline \\n, a carriage return \\r; any other control character, each byte of a name that is not UTF-8, and the bytes of C1 controls, U+2028/U+2029 and bidirectional controls as \\xHH. In Python os.fsdecode(codecs.escape_decode(column.encode())[0]) gives the path back. --json writes the paths exactly (a byte that is not UTF-8 as the surrogate \\udcHH).
    """
    from fmtool.api import CNN

    files = _image_files(images, recursive, null)
    cnn = CNN.load(checkpoint_to_use(checkpoint, "cnn"), device=str(device),
                   feedback=output.TERMINAL)
    results = cnn.classify(files, top_k, invert=str(invert), single_view=single_view,
                           save_input=save_input, force=force)
    for result in results:
        if result.error is not None:
            output.stderr.print(f"error: {output.escape(result.path)}: {output.escape(result.error)}")
        elif not json_out:
            cells = [output.escape(result.path)]
            for label, probability in result.predictions:
                cells += [output.escape(label), f"{probability:.4f}"]
            sys.stdout.write("\t".join(cells) + "\n")
    if json_out:
        output.print_json([result.to_dict() for result in results])
    if any(result.error is not None for result in results):
        raise typer.Exit(1)


def _image_files(arguments: list[Path], recursive: bool, null: bool) -> list[Path]:
    """The files classify reads: each argument as a file, a folder's images, or (for -) the
    paths standard input lists."""
    from fmtool.data.inputs import image_paths, read_path_list
    from fmtool.errors import UserError

    stdin = [argument for argument in arguments if argument.as_posix() == "-"]
    if len(stdin) > 1:
        raise UserError("- (standard input) can be given once")
    if null and not stdin:
        raise UserError("--null (-0) reads NUL-separated paths from standard input; give - too")
    paths: list[Path] = []
    for argument in arguments:
        paths += read_path_list(sys.stdin.buffer, null) if argument.as_posix() == "-" else [argument]
    return image_paths(paths, recursive)


def project(
    layer: Annotated[str, typer.Option(
        "--layer", "-l", help="Layer(s) to project, comma-separated, one panel each: conv1..conv9, "
        "linear1, output, or all.")] = DEFAULT_LAYERS,
    method: Annotated[ProjectionMethod, choice(ProjectionMethod, "method", "tsne (neighbourhoods; slower) or pca (the two directions of largest variance).")] = ProjectionMethod.tsne,
    per_class: Annotated[int, number_option(Bounds(int, 1, PER_CLASS_MAX), "per_class", "Test images per class (the report: 50; Fashion-MNIST's test set has 1000 of each).")] = 50,
    seed: Annotated[int, number_option(Bounds(int, 0, 2**32 - 1), "seed", "Seed of the sample and of PCA / t-SNE (scikit-learn takes 32-bit seeds).")] = 0,
    thumbnails: Annotated[bool, typer.Option(help="Draw the images at their points (Figure 7) instead of dots.")] = False,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Figure file (.png, .svg, .pdf); the CSV goes beside it. Default: projection-METHOD-LAYERS.png in the checkpoint's run folder.", dir_okay=False)] = None,
    checkpoint: CheckpointOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite the figure and CSV if they exist (always allowed for the default names in a run folder fmtool made).")] = False,
    list_layers: Annotated[bool, typer.Option("--list-layers", help="Print the layers and their output shapes, then exit.")] = False,
    json_out: JsonOpt = False,
    device: DeviceOpt = "auto",
    data_dir: FashionDirOpt = None,
) -> None:
    """Project a CNN layer's activations on test images to 2-D with t-SNE or PCA (Figures 5-7).

    Takes --per-class test images of every class (seeded), records what each --layer outputs, flattens it and projects it to 2-D. Writes a figure with one panel per layer (a colour and a legend entry per class) and a CSV of the points (layer, index in the test set, label, class, x, y). A figure or CSV that exists is refused before any work unless --force; the default names in a run folder fmtool made are its own and are rewritten.

    Prints, per layer, how well the classes separate in the picture: 5-NN accuracy (each point classified by its 5 nearest neighbours; 1.0 = perfect, 0.1 = chance; - below 4 images per class) and silhouette (-1..1, higher = tighter, further-apart classes; - with one image per class). t-SNE first reduces wide layers to 50 dimensions with PCA.

    Example: fmtool project --layer conv9,linear1,output --method pca --out layers.svg
    """
    # OpenMP threads wait passively unless the user said otherwise: scikit-learn's t-SNE opens a
    # parallel region on each of its 1,000 iterations, and busy-waiting on a CPU shared with
    # other work made 500-point t-SNE 5x slower (12 s instead of 2.4 s, 2 cores).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch / sklearn load OpenMP
    from fmtool.cnn.activations import parse_layers

    layers = parse_layers(layer)
    if out is not None:
        from fmtool.cnn.projection_plots import check_format

        check_format(out)
    if list_layers:
        _list_layers(checkpoint, json_out)
        return
    from fmtool.api import CNN
    from fmtool.cnn.projection_plots import default_figure

    start = time.perf_counter()
    path = checkpoint_to_use(checkpoint, "cnn")
    cnn = CNN.load(path, device=str(device), feedback=output.TERMINAL)
    if out is None:
        out, owned = default_figure(path, method.value, layers, thumbnails)
        force = force or owned
    found = cnn.project(layers, method=method.value, per_class=per_class, seed=seed,
                        data_dir=data_dir, save=out, thumbnails=thumbnails, force=force)
    report = {"checkpoint": str(path), "method": method.value, "points": len(found[0].labels),
              "per_class": per_class, "seed": seed, "figure": str(found[0].figure),
              "csv": str(found[0].csv), "layers": [item.scores() for item in found],
              "seconds": round(time.perf_counter() - start, 2)}
    if json_out:
        output.print_json(report)
    else:
        _print_projection(report)


def _list_layers(checkpoint: Path | None, json_out: bool) -> None:
    """Shapes of the checkpoint's model; before any training, those of the report's model."""
    from math import prod

    from fmtool.api import CNN
    from fmtool.engine.bundled import bundled_checkpoint
    from fmtool.engine.runs import list_runs

    if checkpoint is None and not list_runs("cnn") and bundled_checkpoint("cnn") is None:
        cnn = CNN.from_config()
        output.stderr.print("no CNN checkpoint yet: these are the report's model's layers")
    else:
        cnn = CNN.load(checkpoint_to_use(checkpoint, "cnn"), device="cpu")
    rows = [{"layer": name, "shape": list(shape), "features": prod(shape)}
            for name, shape in cnn.layers().items()]
    if json_out:
        output.print_json(rows)
        return
    from rich.table import Table

    table = Table(title=f"Layers of the CNN (width {output.escape(cnn.config.width)}), output "
                        "per image")
    for column in ("layer", "shape", "features"):
        table.add_column(column, justify="left" if column == "layer" else "right")
    for row in rows:
        table.add_row(row["layer"], " x ".join(map(str, row["shape"])), f"{row['features']:,}")
    output.stdout.print(table)


def _print_projection(report: dict[str, Any]) -> None:
    from rich.table import Table

    def number(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    out = output.stdout
    out.print(f"checkpoint {output.escape(report['checkpoint'])}: {report['points']} test images "
              f"({report['per_class']} per class, seed {report['seed']})")
    pca = report["method"] == "pca"
    table = Table(title=f"How well the classes separate in 2-D ({report['method']})")
    table.add_column("layer")
    table.add_column("features", justify="right")
    table.add_column("5-NN accuracy", justify="right")
    table.add_column("silhouette", justify="right")
    if pca:
        table.add_column("variance kept", justify="right")
    table.add_column("seconds", justify="right")
    for row in report["layers"]:
        cells = [row["layer"], f"{row['features']:,}", number(row["knn_accuracy"]),
                 number(row["silhouette"])]
        if pca:
            cells.append(number(row["explained_variance"]))
        table.add_row(*cells, f"{row['seconds']:.1f}")
    out.print(table)
    out.print(f"figure: {output.escape(report['figure'])}")
    out.print(f"csv: {output.escape(report['csv'])}")
