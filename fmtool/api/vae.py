"""`fmtool.VAE`: the report's face VAE as one Python object that loads, trains, encodes,
decodes, reconstructs, blends faces and exports, as the `fmtool` commands do (they call it).

    from fmtool import VAE
    vae = VAE.load()                                  # the latest run, else the bundled model
    frames = vae.fuse("a.jpg", "b.jpg", steps=10)     # PIL images from A's face to B's
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from PIL import Image

from fmtool.api.common import (
    Picture,
    Progress,
    TrainedModel,
    as_device,
    as_list,
    as_source,
    feedback_or_default,
)
from fmtool.api.results import Reconstruction
from fmtool.errors import UserError
from fmtool.metrics import float32_value
from fmtool.vae.config import KIND, VAEConfig

if TYPE_CHECKING:
    import torch

    from fmtool.models.vae import FaceVAE
    from fmtool.vae.fuse import Fusion


def to_picture(image: torch.Tensor) -> Image.Image:
    """A [3, S, S] float image in [0, 1] as an 8-bit RGB picture."""
    array = (image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(array)


@dataclass
class VAE(TrainedModel):
    """A trained (or freshly built) face VAE on one device, with its config and checkpoint
    metadata. Make one with `VAE.load`, `VAE.train` or `VAE.from_config`."""

    model: FaceVAE
    config: VAEConfig
    kind = KIND

    @staticmethod
    def _read(path: Path, device: torch.device) -> tuple[FaceVAE, VAEConfig, dict[str, Any]]:
        from fmtool.vae.inference import load_vae

        return load_vae(path, device)

    # -- making one ----------------------------------------------------------------------
    @classmethod
    def from_config(cls, config: VAEConfig | None = None, *, device: str | torch.device = "cpu",
                    feedback: Progress = None) -> "VAE":
        """An untrained VAE (by default 64 px faces, a 256-number code)."""
        config = VAEConfig() if config is None else config
        return cls(config.build(), config, {}, None, as_device(device), feedback)

    @classmethod
    def train(cls, recipe: str | None = None, *, device: str | torch.device = "auto",
              precision: str = "auto", compile: str = "auto",
              data_dir: str | os.PathLike | None = None, name: str | None = None,
              resume: bool = False, limit: int | None = None, val_limit: int | None = None,
              time_limit: float | None = None, feedback: Progress = None,
              **overrides: Any) -> "VAE":
        """Trains a VAE as `fmtool train vae` does and returns it (its best.pt: the lowest
        validation loss). `recipe`: paper (the report's Table 3, 224 px) or cpu (64 px); any
        recipe value as a keyword (`epochs=3`, `image_size=64`, ...); `data_dir`: a folder of
        faces, one sub-folder per person (default: LFW in fmtool's cache); `limit` /
        `val_limit`: seeded subsets of the training and held-out faces; `time_limit`: as for
        `CNN.train`."""
        from fmtool.engine.run_options import VAERunOptions
        from fmtool.engine.training import plan_run, run_training
        from fmtool.vae import recipes

        deadline = None if time_limit is None else time.monotonic() + time_limit
        feedback = feedback_or_default(feedback)
        folder = None if data_dir is None else str(Path(data_dir).resolve())
        options = VAERunOptions(limit=limit, val_limit=val_limit, precision=str(precision),
                                compile=str(compile), data_dir=folder)
        plan = plan_run(KIND, recipes.RECIPES, recipe, name, resume, overrides, options,
                        str(device), feedback)

        def build_task(chosen: torch.device) -> Any:
            from fmtool.data.faces import load_face_splits
            from fmtool.engine.device import choose_precision
            from fmtool.vae.task import VAETask

            run, r = plan.options, plan.recipe
            source = Path(run.data_dir) if run.data_dir else None  # type: ignore[attr-defined]
            faces = load_face_splits(source, r.image_size, r.val_fraction, r.seed, run.limit,
                                     run.val_limit, feedback)  # type: ignore[attr-defined]
            return VAETask(faces, r, chosen, precision=choose_precision(run.precision, chosen))

        run_training(plan, str(device), build_task, feedback, deadline)
        return cls.load(plan.folder, device=device, feedback=feedback)

    # -- using one -------------------------------------------------------------------------
    def faces(self, images: Picture | Sequence[Picture]) -> tuple[torch.Tensor, list[str | None]]:
        """The pictures as the VAE takes them (centre crop, resize): uint8 [n, 3, S, S] of those
        that could be read, and for each picture None or why it could not be read."""
        from fmtool.vae.inference import prepare_faces

        return prepare_faces([as_source(p) for p in as_list(images)], self.config)

    def encode(self, images: Picture | Sequence[Picture]) -> torch.Tensor:
        """The latent means of the faces, [N, latent_dim]; a file that cannot be read is a
        UserError naming it."""
        from fmtool.vae.inference import encode

        faces = self._all_faces(images)
        mu, _ = encode(self.model, faces, self.device)
        return mu

    def decode(self, z: torch.Tensor) -> list[Image.Image]:
        """Latent codes [N, latent_dim] (or one code) as pictures of the model's size."""
        import torch

        from fmtool.vae.inference import decode

        z = torch.as_tensor(z, dtype=torch.float32)
        z = z.unsqueeze(0) if z.dim() == 1 else z
        if z.dim() != 2 or z.shape[1] != self.config.latent_dim:
            raise UserError(f"codes must be [N, {self.config.latent_dim}], got {list(z.shape)}")
        return [to_picture(image) for image in decode(self.model, z, self.device)]

    def reconstruct(self, images: Picture | Sequence[Picture], *, sample: bool = False,
                    seed: int = 0) -> list[Reconstruction]:
        """One result per picture, in order: the reconstruction (decoding the mean code, or a
        sampled code with `sample`, its noise from `seed`), with its PSNR and SSIM against the
        face as the VAE was given it. An unreadable file gets its `error`, never stops the
        others. The numbers are those `fmtool reconstruct` writes to metrics.csv."""
        import torch

        from fmtool.vae.inference import prepare_faces, reconstruct
        from fmtool.vae.reconstruct import face_metrics

        sources = [as_source(p) for p in as_list(images)]
        faces, errors = prepare_faces(sources, self.config)
        generator = torch.Generator().manual_seed(seed) if sample else None
        recons = reconstruct(self.model, faces, self.device, sample, generator)
        metrics = face_metrics(recons, faces.float() / 255)
        made = iter(range(len(faces)))
        results = []
        for source, error in zip(sources, errors):
            path = source if isinstance(source, Path) else None
            if error is not None:
                results.append(Reconstruction(path, error=error))
                continue
            i = next(made)
            results.append(Reconstruction(path, to_picture(recons[i]),
                                          float32_value(metrics["psnr"][i]),
                                          float32_value(metrics["ssim"][i])))
        return results

    def fuse(self, a: Picture, b: Picture, steps: int = 10,
             method: str = "lerp") -> list[Image.Image]:
        """`steps` pictures from face `a` to face `b` (both ends included: their
        reconstructions), decoded from their mean codes interpolated along a straight line
        (lerp) or a great circle (slerp)."""
        return [to_picture(frame) for frame in self.fusion(a, b, steps, method).frames]

    def fusion(self, a: Picture | None = None, b: Picture | None = None, steps: int = 10,
               method: str = "lerp", *, group_a: str | os.PathLike | None = None,
               group_b: str | os.PathLike | None = None, strength: float = 1.0,
               data_dir: str | os.PathLike | None = None,
               group_limit: int | None = 256) -> Fusion:
        """The whole form of `fuse`, as `fmtool fuse` takes it: two faces (a, b); or a walk
        between the mean codes of two groups (folders of faces, or text files of face file names
        looked up under `data_dir`); or one face (a) moved along the attribute mean(B) - mean(A),
        strengths 0 to `strength`. Returns the frames ([T, 3, S, S] in [0, 1]) with what each
        frame's a (or strength) was; `fmtool.vae.fuse.write_fusion` writes them."""
        from fmtool.engine.bounds import Bounds
        from fmtool.vae import fuse as fusing

        Bounds(int, 2, None).check("steps", steps)
        groups = group_a is not None and group_b is not None
        if (group_a is None) != (group_b is None):
            raise UserError("give both group_a and group_b (the attribute goes from A to B)")
        root = None if data_dir is None else Path(data_dir)
        if not groups:
            if a is None or b is None:
                raise UserError("give two faces, or group_a and group_b (with one face or none)")
            faces = self._all_faces([a, b])
            return fusing.fuse_faces(self.model, faces, steps, method, self.device,
                                     {"a": _name(a), "b": _name(b)})
        if b is not None:
            raise UserError("with group_a and group_b give one face (to move along the "
                            "attribute) or none (to walk between the groups)")
        ga, gb = Path(group_a), Path(group_b)  # type: ignore[arg-type]
        if a is None:
            return fusing.fuse_groups(self.model, self.config, ga, gb, steps, method, self.device,
                                      root, group_limit, self.feedback)
        face = as_source(a)
        if not isinstance(face, Path):
            raise UserError("moving a face along an attribute takes the face as a file")
        return fusing.add_attribute(self.model, self.config, face, ga, gb, strength, steps,
                                    self.device, root, group_limit, self.feedback)

    def reconstruct_folder(self, folder: str | os.PathLike, out: str | os.PathLike, *,
                           recursive: bool = False, sample: bool = False, seed: int = 0,
                           force: bool = False) -> dict[str, Any]:
        """`fmtool reconstruct`: every face in `folder` reconstructed into `out` (images/, the
        report's Figure 9 and 10 grids, metrics.csv); returns what `--json` prints."""
        from fmtool.vae.reconstruct import reconstruct_folder

        return reconstruct_folder(Path(folder), self.model, self.config, self.checkpoint,
                                  Path(out), self.device, recursive=recursive, sample=sample,
                                  seed=seed, force=force, feedback=self.feedback)

    def evaluate(self, data_dir: str | os.PathLike | None = None) -> dict[str, Any]:
        """PSNR and SSIM over all the faces of the people the checkpoint's training held out
        (its person-disjoint split of `data_dir`, default LFW), as its model card measures
        them, and whether that split is the one training recorded."""
        from fmtool.vae.evaluate import held_out_of, measure

        held = held_out_of(self.config, self.meta, None if data_dir is None else Path(data_dir),
                           self.feedback)
        return measure(self.model, self.meta, held, self.device)

    def export(self, path: str | os.PathLike, format: str = "onnx", *,
               force: bool = False) -> list[Path]:
        """The encoder (pictures in [0, 1] -> the code's mean and log-variance) and the decoder
        (codes -> pictures in [0, 1]) as files that run without fmtool: ONNX (needs
        `pip install 'fmtool[export]'`; face.onnx gives face.encoder.onnx and face.decoder.onnx)
        or TorchScript (one file); returns the files written. If any of them exists, nothing is
        done unless `force`; they appear together or not at all."""
        from fmtool.vae.export import export_vae

        return export_vae(self.model, preprocessing=self.config.preprocessing(), path=Path(path),
                          format=format, force=force)

    def _all_faces(self, images: Picture | Sequence[Picture]) -> torch.Tensor:
        faces, errors = self.faces(images)
        sources = as_list(images)
        for source, error in zip(sources, errors):
            if error is not None:
                raise UserError(f"{_name(source)}: {error}")
        return faces


def _name(picture: Picture) -> str:
    return str(picture) if isinstance(picture, (str, os.PathLike)) else "a picture in memory"
