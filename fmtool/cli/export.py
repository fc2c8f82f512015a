"""`fmtool export`: a checkpoint as a file that runs without fmtool (ONNX or TorchScript).

Like every cli module, nothing heavy is imported at module level: torch loads inside the command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from fmtool.choices import ExportFormat, ModelKind
from fmtool.cli import output
from fmtool.cli.checkpoints import checkpoint_to_use
from fmtool.cli.options import ForceOpt, JsonOpt, choice

SUFFIX = {ExportFormat.onnx: ".onnx", ExportFormat.torchscript: ".torchscript.pt"}


def export(
    checkpoint: Annotated[Optional[Path], typer.Argument(help="A CNN or VAE checkpoint (.pt file or run folder), or builtin (a bundled model); default: the latest run of --model, else its bundled model.", show_default=False)] = None,
    format: Annotated[ExportFormat, choice(ExportFormat, "export format", "onnx (one file per graph; needs pip install 'fmtool\\[export]') or torchscript (torch.jit.load).", "--format", "-f")] = ExportFormat.onnx,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="The file to write (.onnx, or .pt / .pth for torchscript); default: cnn.onnx, cnn.torchscript.pt, vae.onnx or vae.torchscript.pt in the current folder. A VAE's ONNX export writes two files beside it: NAME.encoder.onnx and NAME.decoder.onnx.", metavar="FILE", show_default=False)] = None,
    model: Annotated[Optional[ModelKind], choice(ModelKind, "model", "Which model: needed only for builtin or no checkpoint (default cnn); a named checkpoint says its own.", "--model", "-m", show_default=False)] = None,
    force: ForceOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Export a model as a file that runs without fmtool: ONNX (onnxruntime, ...) or TorchScript (torch.jit.load).

    The CNN's file takes float32 images [N, 1, 28, 28] with values in [0, 1] (pixel / 255): one item, centred, light on a black background, grey, as in Fashion-MNIST. It does fmtool's preprocessing inside (the resize to the model's size, its scaling, and the mirror averaging when the model was trained with --tta) and gives logits [N, classes] equal to fmtool's; the label is the class named at the argmax.

    The VAE's encoder takes float32 faces [N, 3, S, S] in [0, 1], prepared as for training (centre crop 224/250 of the shorter side, bilinear resize to S x S, RGB) and gives mu and logvar [N, latent]; its decoder takes codes z [N, latent] and gives faces in [0, 1]. TorchScript holds both in one file, as the methods encode and decode.

    Each file's metadata (ONNX metadata_props; TorchScript's extra file fmtool.json) names the classes in order, the input shape, range and picture, the preprocessing and the fmtool version. Every file is run on test inputs and compared with the model before it is written. Prints the files written, one per line. An existing file is refused, before any work, unless --force; the files appear together or not at all.
    """
    from fmtool.engine import export as engine_export
    from fmtool.engine.io import check_outputs

    kind = (model or _kind_of(checkpoint)).value
    out = Path(f"{kind}{SUFFIX[format]}") if out is None else out
    if kind == "vae":
        from fmtool.vae.export import export_paths
        planned = export_paths(out, format)
    else:
        planned = [out]
    check_outputs(planned, out.parent, force)  # a folder named as --out is said to be one
    engine_export.parse_format(format, out)
    path = checkpoint_to_use(checkpoint, kind)
    report = _export_cnn(path, out, format) if kind == "cnn" else _export_vae(path, out, format)
    if json_out:
        output.print_json(report)
        return
    for written in report["files"]:
        output.stdout.print(output.escape(written))


def _kind_of(checkpoint: Optional[Path]) -> ModelKind:
    """A named checkpoint's own kind; cnn for builtin or none (use --model vae for the VAE)."""
    from fmtool.engine.bundled import BUILTIN
    from fmtool.engine.checkpoint import load_checkpoint
    from fmtool.engine.runs import resolve_checkpoint
    from fmtool.errors import UserError

    if checkpoint is None or checkpoint.as_posix() == BUILTIN:
        return ModelKind.cnn
    path = resolve_checkpoint(checkpoint, "cnn")
    kind = load_checkpoint(path).kind
    if kind not in {member.value for member in ModelKind}:
        raise UserError(f"{path} is a checkpoint of kind {str(kind)[:40]!r}; fmtool exports cnn "
                        "and vae checkpoints")
    return ModelKind(kind)


def _export_cnn(path: Path, out: Path, format: ExportFormat) -> dict[str, Any]:
    from fmtool.api import CNN
    from fmtool.cnn.export import classifier_metadata

    cnn = CNN.load(path, device="cpu", feedback=output.TERMINAL)
    written = cnn.export(out, format.value, force=True)  # export() checked --force
    config = cnn.config
    inside = classifier_metadata(config.class_names, config.image_size, config.scaling,
                                 config.tta_flip)
    return {"checkpoint": str(path), "kind": "cnn", "format": format.value, "files": [str(written)],
            **{key: inside[key] for key in ("class_names", "input_shape", "input_range", "image_size", "tta_flip")}}


def _export_vae(path: Path, out: Path, format: ExportFormat) -> dict[str, Any]:
    from fmtool.api import VAE

    vae = VAE.load(path, device="cpu", feedback=output.TERMINAL)
    written = vae.export(out, format.value, force=True)  # export() checked --force
    return {"checkpoint": str(path), "kind": "vae", "format": format.value,
            "files": [str(p) for p in written], "image_size": vae.config.image_size,
            "latent_dim": vae.config.latent_dim, "preprocessing": vae.config.preprocessing()}
