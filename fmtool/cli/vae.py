"""The face VAE's commands: `train vae`, `reconstruct` and `fuse`.

Like every cli module, nothing heavy is imported at module level: torch and friends load inside the
commands, so `fmtool --help` stays instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from fmtool.choices import FusionMethod
from fmtool.cli import output
from fmtool.cli.checkpoints import checkpoint_to_use
from fmtool.cli.options import (
    CompileOpt,
    DeviceOpt,
    ForceOpt,
    JsonOpt,
    NameOpt,
    PrecisionOpt,
    ResumeOpt,
    choice,
    number_option,
)
from fmtool.cli.recipe_options import recipe_options
from fmtool.engine.bounds import Bounds
from fmtool.engine.recipe import MAX_SEED
from fmtool.engine.run_options import VAERunOptions
from fmtool.errors import UserError
from fmtool.vae import recipes

FacesDirOpt = Annotated[Optional[Path], typer.Option(
    "--data-dir", help="Folder of face images, searched recursively, one sub-folder per person "
    "(else $FMTOOL_FACES_DIR, else LFW downloaded into the cache).", file_okay=False)]
MAX_STRENGTH = 100.0  # times the attribute vector; far beyond it the decoder only saturates
VaeCheckpointOpt = Annotated[Optional[Path], typer.Option(
    help="A .pt file or a VAE run folder (its best.pt), or builtin (the VAE that ships with fmtool); default: the latest VAE run, else the bundled model.")]


@recipe_options(recipes.VAERecipe, (recipes.PAPER, recipes.CPU))
def train_vae(
    recipe: Annotated[Optional[str], typer.Option(help="paper (the report's Table 3, 224 px) or cpu (64 px, BCE + 0.1 KL, about 90 minutes on one core of a 2-core CPU); default: paper on a CUDA GPU, cpu elsewhere.", show_default=False)] = None,
    limit: Annotated[Optional[int], number_option(VAERunOptions.bounds("limit"), "limit", "Train on a seeded random subset of N training faces.")] = None,
    val_limit: Annotated[Optional[int], number_option(VAERunOptions.bounds("val_limit"), "val_limit", "Validate each epoch on N held-out faces only.")] = None,
    device: DeviceOpt = "auto",
    precision: PrecisionOpt = "auto",
    compile: CompileOpt = "auto",
    data_dir: FacesDirOpt = None,
    name: NameOpt = None,
    resume: ResumeOpt = False,
    *,
    overrides: dict[str, Any],
) -> None:
    """Train the report's VAE on faces (LFW, downloaded on first use, or any folder of faces).

    Faces are centre-cropped (224/250 of the shorter side), resized to --image-size and decoded once into a cache. Validation holds out whole people (folders) and is measured every epoch: loss (BCE + w x KL with w = --kl-weight, and its parts), and PSNR and SSIM of the reconstructions.

    The run folder keeps run.json, metrics.jsonl, last.pt (resumable), best.pt (lowest validation loss), reconstructions/epoch_NNNN.png and the loss and PSNR curves. Ctrl-C or SIGTERM stops cleanly with a resumable checkpoint (exit status 130 or 143); --resume continues where it stopped.
    """
    from fmtool.api import VAE
    from fmtool.cli.training import exit_on_stop

    # --image-size (a multiple of 32: the encoder halves it five times), --latent-dim and the
    # model they make together are checked before any face is decoded (VAERecipe.check).
    with exit_on_stop("vae"):
        VAE.train(recipe, device=str(device), precision=str(precision), compile=str(compile),
                  data_dir=data_dir, name=name, resume=resume, limit=limit, val_limit=val_limit,
                  feedback=output.TERMINAL, **overrides)


def reconstruct(
    folder: Annotated[Path, typer.Argument(help="Folder of face images.", show_default=False, metavar="DIR")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("reconstructions"),
    checkpoint: VaeCheckpointOpt = None,
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="Also read images in sub-folders.")] = False,
    sample: Annotated[bool, typer.Option("--sample", help="Decode a random z ~ q(z|x) instead of its mean.")] = False,
    seed: Annotated[int, number_option(Bounds(int, 0, MAX_SEED), "seed", "Seed of the noise for --sample.")] = 0,
    force: ForceOpt = False,
    json_out: JsonOpt = False,
    device: DeviceOpt = "auto",
) -> None:
    """Reconstruct every face in DIR with a VAE checkpoint.

    Writes into --out: images/ (each reconstruction as PNG), side_by_side_NNN.png (the report's Figure 9: 64 originals beside their reconstructions), alternating_NNN.png (Figure 10: pairs in alternating columns) and metrics.csv (per image: BCE, MSE, PSNR, SSIM). Faces get the training preprocessing (centre crop, resize). Deterministic unless --sample.

    Unreadable files are reported on stderr and skipped (exit code 1 if any). Existing files are never overwritten without --force, checked before any work; the outputs appear together at the end, or none does if the run fails or is interrupted part-way (Ctrl-C, SIGTERM), so running it again needs no --force. Two faces that would share an output name (a.jpg, a.png) keep their extension (a.jpg.png, a.png.png). --out may be DIR itself: reconstruct's own outputs there are not read as inputs.
    """
    from fmtool.api import VAE

    vae = VAE.load(checkpoint_to_use(checkpoint, "vae"), device=str(device),
                   feedback=output.TERMINAL)
    report = vae.reconstruct_folder(folder, out, recursive=recursive, sample=sample, seed=seed,
                                    force=force)
    _report_skipped(report["skipped"])
    if json_out:
        output.print_json(report)
    else:
        m = report["mean"]
        skipped = f", {len(report['skipped'])} skipped" if report["skipped"] else ""
        output.stdout.print(f"reconstructed {report['images']} images{skipped}: BCE {m['bce']:.4f}  "
                            f"MSE {m['mse']:.5f}  PSNR {m['psnr']:.2f} dB  SSIM {m['ssim']:.4f}  "
                            f"-> {output.escape(report['out'])} (metrics.csv, "
                            f"{len(report['grids'])} grids)")
    if report["skipped"]:
        raise typer.Exit(1)


def _report_skipped(skipped: list[dict[str, str]]) -> None:
    for item in skipped:
        output.stderr.print(f"skipped {output.escape(item['path'])}: {output.escape(item['error'])}")


def fuse(
    images: Annotated[Optional[list[Path]], typer.Argument(help="A.jpg B.jpg to blend; or one face to move along --group-a -> --group-b; or none with two groups.", show_default=False, metavar="[FACE...]")] = None,
    steps: Annotated[int, number_option(Bounds(int, 2, 1000), "steps", "Frames, both ends included.")] = 10,
    method: Annotated[FusionMethod, choice(FusionMethod, "method", "lerp: straight line; slerp: great circle, codes keep their length.")] = FusionMethod.lerp,
    out: Annotated[Path, typer.Option("--out", "-o", help="Strip image, .png or .jpg say (frames go to <name>_frames/), or a folder (a name without a suffix) for strip.png and the frames; not the folder of the faces it reads.")] = Path("fusion.png"),
    group_a: Annotated[Optional[Path], typer.Option("--group-a", help="Folder of images, or text file of image names (like LFW's female_names.txt).")] = None,
    group_b: Annotated[Optional[Path], typer.Option("--group-b", help="Like --group-a; the direction goes from A to B.")] = None,
    strength: Annotated[float, number_option(Bounds(float, -MAX_STRENGTH, MAX_STRENGTH), "strength", "With one face and two groups: add up to STRENGTH x (mean B - mean A); negative goes towards A.")] = 1.0,
    group_limit: Annotated[int, typer.Option(help="Average at most N faces per group (seeded subset).", min=1)] = 256,
    pairs: Annotated[Optional[Path], typer.Option("--pairs", help="Text file of pairs, `A.jpg B.jpg` per line (names looked up as in a list file): one strip per pair, stacked in one image, without frames.", dir_okay=False)] = None,
    data_dir: Annotated[Optional[Path], typer.Option("--data-dir", help="Where the names in a list or pairs file are looked up (else $FMTOOL_FACES_DIR, else the file's folder).", file_okay=False)] = None,
    checkpoint: VaeCheckpointOpt = None,
    force: ForceOpt = False,
    json_out: JsonOpt = False,
    device: DeviceOpt = "auto",
) -> None:
    """Blend faces through the VAE's latent space (the report's Figures 11 and 12).

    fuse A.jpg B.jpg decodes (1-a)*z_A + a*z_B for --steps values of a from 0 to 1 (z = the encoder's mean, so the ends are A's and B's reconstructions) and writes one strip (A, the frames, B) and each frame.

    fuse --group-a F.txt --group-b M.txt walks between the mean codes of two groups; fuse FACE.jpg --group-a F.txt --group-b M.txt --strength 1.5 adds the attribute vector (mean B - mean A) to one face, from 0 to STRENGTH.

    fuse --pairs young_old.txt blends each pair of the file (a line `A.jpg B.jpg`, # starts a comment) and stacks the strips, one row per pair, in one image: the report's figures of several fusions.
    """
    from fmtool.api import VAE
    from fmtool.vae import fuse as fusing

    images = images or []
    groups = group_a is not None and group_b is not None
    if pairs is not None and (images or group_a is not None or group_b is not None):
        raise UserError("--pairs names every face itself; give no faces and no groups with it")
    if (group_a is None) != (group_b is None):
        raise UserError("give both --group-a and --group-b (the attribute goes from A to B)")
    if pairs is None and not groups and len(images) != 2:
        raise UserError("give two faces (fuse A.jpg B.jpg), or --group-a and --group-b "
                        "(with one face or none)")
    if groups and len(images) > 1:
        raise UserError("with --group-a/--group-b give one face (to move along the attribute) "
                        "or none (to walk between the groups)")
    fusing.check_output(out, 0 if pairs else steps, force,  # before any work
                        [*images, *(group for group in (group_a, group_b) if group is not None)])
    vae = VAE.load(checkpoint_to_use(checkpoint, "vae"), device=str(device),
                   feedback=output.TERMINAL)
    if pairs is not None:
        fusions = [vae.fusion(a, b, steps, method.value)
                   for a, b in fusing.read_pairs(pairs, data_dir, output.TERMINAL)]
        report = fusing.write_pairs(fusions, out, force)
        if json_out:
            output.print_json(report)
        else:
            values = " ".join(f"{a:.2f}" for a in report["alphas"])
            output.stdout.print(f"{output.escape(report['strip'])}  ({len(fusions)} pairs, one "
                                f"row each, a = {values})")
        return
    fusion = vae.fusion(*images, steps=steps, method=method.value, group_a=group_a,
                        group_b=group_b, strength=strength, data_dir=data_dir,
                        group_limit=group_limit)
    report = fusing.write_fusion(fusion, out, force)
    _report_skipped(fusion.skipped)
    if json_out:
        output.print_json(report)
    else:
        _print_fusion(fusion, report)
    if fusion.skipped:
        raise typer.Exit(1)


def _print_fusion(fusion: Any, report: dict[str, Any]) -> None:
    key = "strength" if fusion.mode == "attribute" else "a"
    values = " ".join(f"{frame[key]:.2f}" for frame in report["frames"])
    frames_folder = Path(report["frames"][0]["path"]).parent
    output.stdout.print(f"{output.escape(report['strip'])}  ({len(report['frames'])} frames in "
                        f"{output.escape(frames_folder)}, {key} = {values})")
