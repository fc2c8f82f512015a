"""`fmtool project`: PCA / t-SNE pictures of what a CNN layer learns, with separation scores.

Like cli.py, this module imports no torch, scikit-learn or matplotlib at import time.
Output files: `--out FILE` names the figure (.png, .svg or .pdf) and the CSV of coordinates is
written beside it with the same name and .csv. Without `--out`, both go into the checkpoint's run
folder (next to eval's figures, so a model's pictures stay with it) as
projection-<method>-<layers>[-thumbnails].png/.csv; the paths are printed either way.

OpenMP threads wait passively (OMP_WAIT_POLICY=PASSIVE unless the user set it): scikit-learn's
t-SNE opens a parallel region on every one of its 1,000 iterations, and with the default busy-wait
a CPU shared with other work made 500-point t-SNE 5x slower (12 s instead of 2.4 s, 2 cores).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from fmtool.cli_common import DeviceOpt, FashionDirOpt, JsonOpt, print_json

if TYPE_CHECKING:
    import numpy as np
    import torch

    from fmtool.analysis.projection import Projection

DEFAULT_LAYERS = "conv9,linear1,output"

LayerOpt = Annotated[str, typer.Option(
    "--layer", "-l", help="Layer(s) to project, comma-separated, one panel each: conv1..conv9, "
    "linear1, output, or all.")]
MethodOpt = Annotated[str, typer.Option(
    help="tsne (neighbourhoods; slower) or pca (the two directions of largest variance).",
    metavar="tsne|pca")]


def project(
    layer: LayerOpt = DEFAULT_LAYERS,
    method: MethodOpt = "tsne",
    per_class: Annotated[int, typer.Option(help="Test images per class (the report: 50).", min=1)] = 50,
    seed: Annotated[int, typer.Option(help="Seed of the sample and of PCA / t-SNE.")] = 0,
    thumbnails: Annotated[bool, typer.Option(help="Draw the images at their points (Figure 7) instead of dots.")] = False,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Figure file (.png, .svg, .pdf); the CSV goes beside it. Default: projection-METHOD-LAYERS.png in the checkpoint's run folder.", dir_okay=False)] = None,
    checkpoint: Annotated[Optional[Path], typer.Option(help="A .pt file or run folder; default: the latest CNN run.")] = None,
    list_layers: Annotated[bool, typer.Option("--list-layers", help="Print the layers and their output shapes, then exit.")] = False,
    json_out: JsonOpt = False,
    device: DeviceOpt = "auto",
    data_dir: FashionDirOpt = None,
) -> None:
    """Project a CNN layer's activations on test images to 2-D with t-SNE or PCA (Figures 5-7).

    Takes --per-class test images of every class (seeded), records what each --layer outputs, flattens it and projects it to 2-D. Writes a figure with one panel per layer (a colour and a legend entry per class) and a CSV of the points (layer, index in the test set, label, class, x, y).

    Prints, per layer, how well the classes separate in the picture: 5-NN accuracy (each point classified by its 5 nearest neighbours; 1.0 = perfect, 0.1 = chance) and silhouette (-1..1, higher = tighter, further-apart classes). t-SNE first reduces wide layers to 50 dimensions with PCA.

    Example: fmtool project --layer conv9,linear1,output --method pca --out layers.svg
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch / sklearn load OpenMP
    from fmtool.analysis.activations import parse_layers
    from fmtool.analysis.projection import check_method

    layers = parse_layers(layer)
    check_method(method)
    if out is not None:
        from fmtool.analysis.projection_plots import check_format

        check_format(out)
    if list_layers:
        _list_layers(checkpoint, json_out)
        return
    from fmtool.classifier import load_classifier
    from fmtool.device import choose_device
    from fmtool.paths import resolve_checkpoint

    torch_device = choose_device(device)
    path = resolve_checkpoint(checkpoint, "cnn")
    model, meta = load_classifier(path, torch_device)
    report = _run(model, meta, path, layers, method, per_class, seed, thumbnails, out,
                  torch_device, data_dir)
    if json_out:
        print_json(report)
    else:
        _print_report(report)


def _list_layers(checkpoint: Path | None, json_out: bool) -> None:
    """Shapes of the checkpoint's model; before any training, those of the report's model."""
    from math import prod

    import torch

    from fmtool import console
    from fmtool.analysis.activations import layer_shapes
    from fmtool.classifier import build_model, load_classifier
    from fmtool.paths import list_runs, resolve_checkpoint

    if checkpoint is None and not list_runs("cnn"):
        meta = {"architecture": {"num_classes": 10, "width": 1.0, "image_size": 32}}
        model = build_model(meta)
        console.stderr.print("no CNN checkpoint yet: these are the report's model's layers")
    else:
        model, meta = load_classifier(resolve_checkpoint(checkpoint, "cnn"), torch.device("cpu"))
    shapes = layer_shapes(model, meta["architecture"]["image_size"])
    rows = [{"layer": name, "shape": list(shape), "features": prod(shape)}
            for name, shape in shapes.items()]
    if json_out:
        print_json(rows)
        return
    from rich.table import Table

    table = Table(title=f"Layers of the CNN (width {meta['architecture'].get('width', 1.0)}), "
                        "output per image")
    for column in ("layer", "shape", "features"):
        table.add_column(column, justify="left" if column == "layer" else "right")
    for row in rows:
        table.add_row(row["layer"], " x ".join(map(str, row["shape"])), f"{row['features']:,}")
    console.stdout.print(table)


def _run(model: Any, meta: dict[str, Any], path: Path, layers: list[str], method: str,
         per_class: int, seed: int, thumbnails: bool, out: Path | None,
         device: torch.device, data_dir: Path | None) -> dict[str, Any]:
    import time

    from fmtool.analysis import projection_plots
    from fmtool.analysis.activations import sample_per_class
    from fmtool.analysis.projection import write_csv
    from fmtool.data.fashion import load_fashion_mnist
    from fmtool.models.cnn import LAYER_NAMES

    start = time.perf_counter()
    names = meta["class_names"]
    data = load_fashion_mnist(data_dir)
    indices = sample_per_class(data.test_labels, per_class, seed, len(names))
    images, labels = data.test_images[indices], data.test_labels[indices]
    projections = _project_layers(model, meta, images, labels, layers, method, seed, device)
    if out is None:
        tag = "all" if len(layers) == len(LAYER_NAMES) else "+".join(layers)
        out = path.parent / f"projection-{method}-{tag}{'-thumbnails' if thumbnails else ''}.png"
    np_labels = labels.numpy()
    figure = projection_plots.draw(projections, np_labels, names, method, out,
                                   images.numpy() if thumbnails else None)
    table = write_csv(out.with_suffix(".csv"), projections, indices.numpy(), np_labels, names)
    return {
        "checkpoint": str(path),
        "method": method,
        "points": len(labels),
        "per_class": per_class,
        "seed": seed,
        "figure": str(figure),
        "csv": str(table),
        "layers": [item.scores() for item in projections],
        "seconds": round(time.perf_counter() - start, 2),
    }


def _project_layers(model: Any, meta: dict[str, Any], images: torch.Tensor,
                    labels: torch.Tensor, layers: list[str], method: str, seed: int,
                    device: torch.device) -> list[Projection]:
    """Captures the layers in memory-sized groups (one forward pass each) and projects each."""
    from math import prod

    from fmtool import console
    from fmtool.analysis.activations import capture, layer_groups, layer_shapes
    from fmtool.analysis.projection import METHOD_TITLES, analyse_layer

    size = meta["architecture"]["image_size"]
    features = {name: prod(shape) for name, shape in layer_shapes(model, size).items()}
    np_labels: np.ndarray = labels.numpy()
    done: dict[str, Projection] = {}
    with console.progress(transient=True) as bar:
        for group in layer_groups(layers, features, len(images)):
            task = bar.add_task(f"activations of {', '.join(group)}", total=len(images), status="")
            captured = capture(model, images, group, size, device,
                               on_batch=lambda n, task=task: bar.advance(task, n))
            for name in group:
                bar.update(task, description=f"{METHOD_TITLES[method]} of {name}",
                           status=f"{len(images)} x {features[name]:,}")
                done[name] = analyse_layer(name, captured.pop(name).numpy(), np_labels, method, seed)
            bar.remove_task(task)
    return [done[name] for name in layers]


def _print_report(report: dict[str, Any]) -> None:
    from rich.table import Table

    from fmtool import console

    def number(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    out = console.stdout
    out.print(f"checkpoint {report['checkpoint']}: {report['points']} test images "
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
    out.print(f"figure: {report['figure']}")
    out.print(f"csv: {report['csv']}")
