"""`fmtool report`: the whole study, every figure and table, from one command.

Like every cli module, nothing heavy is imported at module level.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from fmtool.choices import FigureFormat
from fmtool.cli import output
from fmtool.cli.checkpoints import checkpoint_to_use
from fmtool.cli.options import DeviceOpt, FashionDirOpt, ForceOpt, JsonOpt, choice, number_option
from fmtool.engine.bounds import Bounds

CHECKPOINT_HELP = "A .pt file or a run folder, or builtin (the model that ships with fmtool); default: the latest {} run, else the bundled model."


def report(
    cnn: Annotated[Optional[Path], typer.Option("--cnn", help=CHECKPOINT_HELP.format("CNN"))] = None,
    vae: Annotated[Optional[Path], typer.Option("--vae", help=CHECKPOINT_HELP.format("VAE"))] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the figures, tables, index.html and report.md.", file_okay=False)] = Path("report"),
    figure_format: Annotated[FigureFormat, choice(FigureFormat, "format", "Format of the plots and diagrams; the pictures of faces are PNG.", "--format")] = FigureFormat.png,
    seed: Annotated[int, number_option(Bounds(int, 0, 2**32 - 1), "seed", "Seed of every sample (images, faces, pairs) and of PCA / t-SNE.")] = 0,
    pairs: Annotated[Optional[Path], typer.Option("--pairs", help="Figure 12's young/old pairs, `A.jpg B.jpg` per line, names looked up in the faces folder; default: the list that ships with fmtool (LFW images chosen by eye).", dir_okay=False)] = None,
    data_dir: FashionDirOpt = None,
    faces_dir: Annotated[Optional[Path], typer.Option("--faces-dir", help="Folder of face images, one sub-folder per person (else $FMTOOL_FACES_DIR, else LFW downloaded into the cache); LFW's female_names.txt and male_names.txt in it or beside it give Figure 11.", file_okay=False)] = None,
    force: ForceOpt = False,
    json_out: JsonOpt = False,
    device: DeviceOpt = "auto",
) -> None:
    """Rebuild the report's study from a CNN and a VAE checkpoint: every figure and table, numbered as in the report, with the report's numbers beside fmtool's.

    Writes into --out: Figure 1 (Fashion-MNIST samples), 2 and 8 (the CNN and the VAE, drawn from the checkpoints' models), 3 and 4 (loss and accuracy per epoch, from the run's metrics.jsonl), 5-7 (PCA, t-SNE and thumbnails of conv9, linear1 and output for 50 test images per class), Table 2 (with the checkpoint's measured accuracy added), 9 and 10 (faces of held-out people and their reconstructions; 96 pairs), 11 and 12 (fusions, women into men and young into old), and index.html and report.md, which show them all with captions and set the report's numbers beside those fmtool measured: test accuracy, per-class accuracy, separation scores, PSNR and SSIM (over all the faces of the people the VAE's training held out, as a model card states them; the documents say so if the faces folder does not give the split the checkpoint recorded), and the recipes.

    The numbers are those eval, project --seed SEED and reconstruct print for the same checkpoints and data; the same checkpoints and --seed give the same study. Files that exist are refused before any work unless --force; all files appear together at the end, or none does. index.html opens from the folder, without a server.

    Example: fmtool report --out study --format svg
    """
    # OpenMP threads wait passively (see `project`): t-SNE runs a parallel region per iteration.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch / sklearn load OpenMP
    from fmtool.engine.device import choose_device
    from fmtool.report.study import build_study

    cnn_path = checkpoint_to_use(cnn, "cnn")
    vae_path = checkpoint_to_use(vae, "vae")
    study = build_study(cnn_path, vae_path, out, figure_format.value, seed, choose_device(str(device)),
                        data_dir, faces_dir, pairs, force, output.TERMINAL)
    if json_out:
        output.print_json(study)
    else:
        _print_study(study)


def _print_study(study: dict[str, Any]) -> None:
    from fmtool.report import published
    from fmtool.report.study import output_names

    escape = output.escape
    out = output.stdout
    cnn, vae = study["cnn"], study["vae"]
    out.print(f"test accuracy {cnn['accuracy']:.4f} ({cnn['correct']:,} of {cnn['images']:,}; "
              f"the report: {published.TRUE_ACCURACY:.2%} of {published.TEST_IMAGES:,}, printed "
              f"as {published.PRINTED_ACCURACY:.2%})")
    people = f"{vae['people']:,} held-out {'person' if vae['people'] == 1 else 'people'}"
    out.print(f"reconstructions of all {vae['faces']:,} faces of the {people}: "
              f"PSNR {vae['psnr']:.2f} dB  SSIM {vae['ssim']:.4f}")
    if vae["split_matches"] is False:
        out.print(f"warning: {escape(vae['split_note'])}")
    missing: dict[str, list[str]] = {}  # why -> the figures it keeps out
    for figure in study["figures"]:
        if figure["missing"]:
            missing.setdefault(figure["missing"], []).append(figure["label"])
    for why, labels in missing.items():
        out.print(f"{', '.join(labels)}: not drawn: {escape(why)}")
    page = Path(study["out"]) / output_names(study["format"])["html"]
    out.print(f"report: {escape(page)} ({len(study['files'])} files, "
              f"{study['seconds']:.0f} s)")
