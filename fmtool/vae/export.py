"""The face VAE's encoder and decoder as files that run without fmtool (ONNX or TorchScript).

The encoder takes float32 faces [N, 3, S, S] in [0, 1], already prepared as training prepared
them (the checkpoint's `preprocessing`: a centre crop of crop[0]/crop[1] of the shorter side, a
bilinear resize to S x S, RGB, pixel / 255; written into the file's metadata, since photos of
any size cannot enter one fixed graph), and gives (mu, logvar) [N, latent]. The decoder takes
codes z [N, latent] and gives faces [N, 3, S, S] in [0, 1] (the Sigmoid included), as
`fmtool.vae.inference.decode`.

Files: ONNX holds one graph per file, so `face.onnx` becomes `face.encoder.onnx` and
`face.decoder.onnx` (see `export_paths`), written together or not at all. TorchScript holds
both as methods of one module in the file named: `torch.jit.load("face.pt").encode(x)` and
`.decode(z)`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from fmtool import __version__
from fmtool.choices import ExportFormat
from fmtool.engine import export
from fmtool.models.vae import FaceVAE

PARTS = ("encoder", "decoder")


class ExportedVAE(nn.Module):
    """Both halves as methods of one module (the TorchScript file)."""

    def __init__(self, model: FaceVAE) -> None:
        super().__init__()
        self.model = model

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """float faces [N, 3, S, S] in [0, 1] -> (mu, logvar), each [N, latent]."""
        return self.model.encode(images)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Codes [N, latent] -> faces [N, 3, S, S] in [0, 1]."""
        return self.model.decode(z)


class ExportedEncoder(ExportedVAE):
    """The encoder alone: an ONNX file holds one module's forward."""

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encode(images)


class ExportedDecoder(ExportedVAE):
    """The decoder alone, for its own ONNX file."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.decode(z)


def _methods(model: FaceVAE) -> dict[str, export.Method]:
    size, latent = model.image_size, model.latent_dim

    def faces(batch: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        return (torch.rand(batch, 3, size, size, generator=generator),)

    def codes(batch: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        return (torch.randn(batch, latent, generator=generator),)

    return {"encoder": export.Method("encode", ("images",), ("mu", "logvar"), faces),
            "decoder": export.Method("decode", ("z",), ("images",), codes)}


def export_paths(path: Path, format: str | ExportFormat) -> list[Path]:
    """The files `export_vae` writes for `path`: face.onnx -> face.encoder.onnx and
    face.decoder.onnx; a TorchScript file is `path` itself."""
    if ExportFormat.parse(format, "export format") is ExportFormat.torchscript:
        return [path]
    return [path.with_name(f"{path.stem}.{part}{path.suffix}") for part in PARTS]


def vae_metadata(image_size: int, latent_dim: int, preprocessing: dict[str, Any]) -> dict[str, Any]:
    """What the exported files say about themselves: sizes, both halves' signatures, and the
    preprocessing a face needs before the encoder."""
    crop = preprocessing.get("crop", [224, 250])
    faces = ["N", 3, image_size, image_size]
    return {
        "description": f"fmtool's face VAE: encoder images {faces} float32 in [0, 1] -> mu, logvar "
                       f"[N, {latent_dim}]; decoder z [N, {latent_dim}] -> images in [0, 1]",
        "fmtool_version": __version__,
        "model": "vae",
        "image_size": image_size,
        "latent_dim": latent_dim,
        "preprocessing": preprocessing,
        "input_picture": f"an RGB face photo, centre crop of {crop[0]}/{crop[1]} of its shorter side, "
                         f"{preprocessing.get('resample', 'bilinear')} resize to {image_size} x "
                         f"{image_size}, values pixel / 255; done before the encoder",
        "sampling": "z = mu + exp(logvar / 2) * eps with eps ~ N(0, I); decoding mu gives the "
                    "reconstruction fmtool shows",
        "encoder": {"inputs": {"images": faces}, "outputs": {"mu": ["N", latent_dim],
                                                             "logvar": ["N", latent_dim]},
                    "range": [0, 1]},
        "decoder": {"inputs": {"z": ["N", latent_dim]}, "outputs": {"images": faces},
                    "range": [0, 1]},
    }


def export_vae(model: FaceVAE, *, preprocessing: dict[str, Any], path: Path,
               format: str | ExportFormat, force: bool = False) -> list[Path]:
    """Writes the encoder and decoder of `model`; returns the files written (`export_paths`).

    `preprocessing` is what is done to a face before the model sees it (crop, image_size,
    resample, range: `VAEConfig.preprocessing`), recorded in the files. The model is copied to
    the CPU in fp32; the caller's stays as it is. Raises UserError, before any work, for an
    existing file among those it would write (unless `force`), an unknown format, a suffix of
    another format or a missing export extra (ONNX); and for a failed write (then no file is
    written)."""
    paths = export_paths(path, format)
    export.check_targets(paths, force)
    chosen = export.parse_format(format, path)
    network = export.for_export(model)
    metadata = vae_metadata(model.image_size, model.latent_dim, preprocessing)
    methods = _methods(network)
    if chosen is ExportFormat.torchscript:
        data = export.torchscript_bytes(ExportedVAE(network), list(methods.values()), metadata)
        return export.write_files({path: data}, overwrite=force)
    modules = {"encoder": ExportedEncoder(network), "decoder": ExportedDecoder(network)}
    contents = {}
    for target, part in zip(paths, PARTS):
        contents[target] = export.onnx_bytes(modules[part], methods[part], dict(metadata, part=part))
    return export.write_files(contents, overwrite=force)
