"""`fmtool fuse`: blend faces by walking between latent codes (the report's Figures 11 and 12).

Three uses, one output (a strip image and its frames), and a fourth, `--pairs FILE`, that
stacks the strips of many pairs into one image (no frames):
- two faces A and B: decode (1 - a) * z_A + a * z_B for `steps` values of a from 0 to 1, where
  z is the encoder's mean (mu), so a = 0 and a = 1 are exactly A's and B's reconstructions;
- two groups (`--group-a`, `--group-b`, each a folder of images or a text file of image names):
  the same walk between the groups' mean codes;
- one face and two groups: the attribute vector mean(B) - mean(A) added to the face's code with
  a strength going from 0 to `strength`.

`slerp` walks the great circle between the codes' directions and changes the length linearly,
so intermediate codes keep the length of typical codes (near the shell of radius sqrt(latent_dim)
where the prior N(0, I) puts its mass) instead of shrinking towards the origin as `lerp` does
half way between two unrelated codes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

from fmtool.choices import FusionMethod
from fmtool.data.faces import ENV_DIR, decode_faces, subset_of, to_unit
from fmtool.data.inputs import is_image_name, list_images
from fmtool.engine.feedback import SILENT, Feedback
from fmtool.engine.io import all_or_nothing, check_outputs
from fmtool.engine.paths import folder_problem, what_is
from fmtool.errors import Option, UserError
from fmtool.models.vae import FaceVAE
from fmtool.vae.config import VAEConfig
from fmtool.vae.figures import FORMATS, save_grid, save_png
from fmtool.vae.inference import decode, encode

GROUP_SEED = 0


def lerp(z_a: torch.Tensor, z_b: torch.Tensor, alphas: torch.Tensor) -> torch.Tensor:
    """[D], [D], [T] -> [T, D]: (1 - a) * z_a + a * z_b."""
    a = alphas.view(-1, 1)
    return (1 - a) * z_a + a * z_b


def slerp(z_a: torch.Tensor, z_b: torch.Tensor, alphas: torch.Tensor) -> torch.Tensor:
    """[D], [D], [T] -> [T, D]: directions along the great circle, lengths linear in a.

    Parallel (or zero) codes have no circle to follow; they fall back to lerp.
    """
    norm_a, norm_b = z_a.norm(), z_b.norm()
    if norm_a < 1e-8 or norm_b < 1e-8:
        return lerp(z_a, z_b, alphas)
    u_a, u_b = z_a / norm_a, z_b / norm_b
    omega = torch.arccos((u_a @ u_b).clamp(-1.0, 1.0))
    if float(omega.sin()) < 1e-6:
        return lerp(z_a, z_b, alphas)
    a = alphas.view(-1, 1)
    direction = (torch.sin((1 - a) * omega) * u_a + torch.sin(a * omega) * u_b) / omega.sin()
    return direction * ((1 - a) * norm_a + a * norm_b)


def interpolate(z_a: torch.Tensor, z_b: torch.Tensor, steps: int, method: str) -> tuple[torch.Tensor, torch.Tensor]:
    """`steps` codes from z_a to z_b (both ends included) and the a of each."""
    method = FusionMethod.parse(method, "method").value
    if steps < 2:
        raise UserError("{} must be at least 2 (the two ends)", Option("steps"))
    alphas = torch.linspace(0.0, 1.0, steps)
    return (lerp if method == "lerp" else slerp)(z_a, z_b, alphas), alphas


@dataclass
class Fusion:
    mode: str  # "pair", "groups" or "attribute"
    frames: torch.Tensor  # [T, 3, S, S] in [0, 1]
    values: list[float]  # a for each frame (the strength, for an attribute)
    ends: list[torch.Tensor] = field(default_factory=list)  # originals shown left/right in the strip
    info: dict[str, Any] = field(default_factory=dict)
    skipped: list[dict[str, str]] = field(default_factory=list)  # unreadable group images


def encode_faces(model: FaceVAE, config: VAEConfig, files: Sequence[Path],
                 device: torch.device) -> tuple[torch.Tensor, torch.Tensor, list[tuple[Path, str]]]:
    """mu of each readable file, the preprocessed faces (uint8), and the unreadable files."""
    images, _, failed = decode_faces(files, config.image_size, config.crop)
    mu, _ = encode(model, images, device)
    return mu, images, failed


def _one_face(model: FaceVAE, config: VAEConfig, path: Path,
              device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    mu, images, failed = encode_faces(model, config, [path], device)
    if failed:
        raise UserError(f"{path}: {failed[0][1]}")
    return mu[0], images[0]


def fuse_pair(model: FaceVAE, config: VAEConfig, a: Path, b: Path, steps: int,
              method: str, device: torch.device) -> Fusion:
    """The frames from face file `a` to face file `b` (see `fuse_faces`)."""
    _, face_a = _one_face(model, config, a, device)
    _, face_b = _one_face(model, config, b, device)
    return fuse_faces(model, torch.stack([face_a, face_b]), steps, method, device,
                      {"a": str(a), "b": str(b)})


def fuse_faces(model: FaceVAE, faces: torch.Tensor, steps: int, method: str,
               device: torch.device, info: dict[str, Any] | None = None) -> Fusion:
    """`steps` frames decoded from codes between two preprocessed faces (uint8 [2, 3, S, S]):
    the encoder's means interpolated with `method` (lerp or slerp), both ends included."""
    mu, _ = encode(model, faces, device)
    codes, alphas = interpolate(mu[0], mu[1], steps, method)
    return Fusion("pair", decode(model, codes, device), alphas.tolist(),
                  [to_unit(faces[0]), to_unit(faces[1])], {**(info or {}), "method": method})


def _faces_index(root: Path) -> dict[str, Path]:
    return {p.name: p for p in list_images(root)}


def _names_root(spec: Path, data_dir: Path | None) -> Path:
    """Where the image names in the list `spec` are looked up: `data_dir`, else
    $FMTOOL_FACES_DIR, else the list's own folder."""
    if data_dir is None and os.environ.get(ENV_DIR):
        data_dir = Path(os.environ[ENV_DIR]).expanduser()
    root = data_dir or spec.parent
    if not root.is_dir():
        raise UserError(f"faces folder {root} {folder_problem(root)}")
    return root


def _list_lines(spec: Path, what: str) -> list[str]:
    """The lines of a text file that are neither blank nor comments (#)."""
    try:
        lines = spec.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{spec} is not a readable text file of {what} ({exc})") from exc
    return [line for line in lines if line.strip() and not line.strip().startswith("#")]


def read_pairs(spec: Path, data_dir: Path | None,
               feedback: Feedback = SILENT) -> list[tuple[Path, Path]]:
    """The pairs of a text file, `A.jpg B.jpg` per line, names found as in a group list (see
    `group_files`). A pair with a name not found is left out with a note; none left is an error."""
    if not spec.is_file():
        kind = what_is(spec)
        problem = "does not exist" if kind == "missing" else f"is {kind}, not a regular file"
        raise UserError(f"pairs file {spec} {problem}; give a text file of `A.jpg B.jpg` lines")
    lines = _list_lines(spec, "image pairs")
    if not lines:
        raise UserError(f"pairs file {spec} holds no pairs; write one `A.jpg B.jpg` per line "
                        "(# starts a comment)")
    root = _names_root(spec, data_dir)
    index = _faces_index(root)
    pairs = []
    for line in lines:
        names = [Path(name).name for name in line.split()]
        if len(names) != 2:
            raise UserError(f"{spec}: the line {line.strip()[:60]!r} is not two image names "
                            "(`A.jpg B.jpg`)")
        if all(name in index for name in names):
            pairs.append((index[names[0]], index[names[1]]))
    if not pairs:
        raise UserError(f"no pair of {spec} has both its faces under {root}; give the folder "
                        "that holds them")
    if len(pairs) < len(lines):
        feedback.note(f"{spec.name}: {len(lines) - len(pairs)} of {len(lines)} pairs left out, "
                      f"their faces are not under {root}")
    return pairs


def group_files(spec: Path, data_dir: Path | None, limit: int | None,
                feedback: Feedback = SILENT) -> list[Path]:
    """A folder (all images in it, recursively) or a text file of image file names.

    Names in a list are resolved by file name under `data_dir`, else $FMTOOL_FACES_DIR, else the
    list's own folder (so LFW's male_names.txt finds the faces in lfw-deepfunneled beside it).
    """
    if spec.is_dir():
        files = list_images(spec)
    elif spec.is_file() and not is_image_name(spec):
        root = _names_root(spec, data_dir)
        names = [line.strip() for line in _list_lines(spec, "image names")]
        index = _faces_index(root)
        wanted = {Path(n).name for n in names}  # names are looked up by file name alone
        files = sorted(index[name] for name in wanted if name in index)
        if len(files) < len(wanted):
            feedback.note(f"{spec.name}: {len(wanted) - len(files)} of {len(wanted)} names not "
                          f"found under {root}")
    else:
        raise UserError(f"{spec} must be a folder of images or a text file of image file names")
    if not files:
        raise UserError(f"group {spec} holds no images")
    return [files[i] for i in subset_of(list(range(len(files))), limit, GROUP_SEED)]


def group_mean(model: FaceVAE, config: VAEConfig, spec: Path, data_dir: Path | None,
               limit: int | None, device: torch.device,
               feedback: Feedback = SILENT) -> tuple[torch.Tensor, int, list[dict[str, str]]]:
    """The mean code (mu) of a group's readable faces, how many there were, and the skipped."""
    mu, _, failed = encode_faces(model, config, group_files(spec, data_dir, limit, feedback), device)
    if len(mu) == 0:
        raise UserError(f"group {spec} holds no readable images")
    return mu.mean(0), len(mu), [{"path": str(path), "error": error} for path, error in failed]


def fuse_groups(model: FaceVAE, config: VAEConfig, group_a: Path, group_b: Path, steps: int,
                method: str, device: torch.device, data_dir: Path | None = None,
                limit: int | None = None, feedback: Feedback = SILENT) -> Fusion:
    z_a, n_a, skipped_a = group_mean(model, config, group_a, data_dir, limit, device, feedback)
    z_b, n_b, skipped_b = group_mean(model, config, group_b, data_dir, limit, device, feedback)
    codes, alphas = interpolate(z_a, z_b, steps, method)
    return Fusion("groups", decode(model, codes, device), alphas.tolist(), [],
                  {"group_a": str(group_a), "group_b": str(group_b), "faces_a": n_a,
                   "faces_b": n_b, "method": method}, skipped_a + skipped_b)


def add_attribute(model: FaceVAE, config: VAEConfig, face: Path, group_a: Path, group_b: Path,
                  strength: float, steps: int, device: torch.device,
                  data_dir: Path | None = None, limit: int | None = None,
                  feedback: Feedback = SILENT) -> Fusion:
    """Moves `face` along mean(B) - mean(A), strengths 0 .. `strength` in `steps` frames."""
    if steps < 2:
        raise UserError("{} must be at least 2 (the two ends)", Option("steps"))
    z, image = _one_face(model, config, face, device)
    z_a, n_a, skipped_a = group_mean(model, config, group_a, data_dir, limit, device, feedback)
    z_b, n_b, skipped_b = group_mean(model, config, group_b, data_dir, limit, device, feedback)
    strengths = torch.linspace(0.0, strength, steps)
    codes = z + strengths.view(-1, 1) * (z_b - z_a)
    return Fusion("attribute", decode(model, codes, device), strengths.tolist(), [to_unit(image)],
                  {"face": str(face), "group_a": str(group_a), "group_b": str(group_b),
                   "faces_a": n_a, "faces_b": n_b, "strength": strength}, skipped_a + skipped_b)


def output_paths(out: Path, frames: int) -> tuple[Path, list[Path]]:
    """`--out x.png` (a picture format fmtool writes, see FORMATS): the strip x.png and frames
    in x_frames/; `--out DIR` (no suffix, or a folder that exists): DIR/strip.png and
    DIR/frame_*.png. Any other suffix is refused: `--out g.svg` would make a folder g.svg."""
    width = max(2, len(str(frames - 1)))
    if out.suffix.lower() in FORMATS:
        strip, folder = out, out.with_name(out.stem + "_frames")
    elif out.suffix and not out.is_dir():
        raise UserError("{} {}: the strip's name must end in {} (or name a folder, without a "
                        "suffix, for strip.png and the frames)", Option("out"), out,
                        ", ".join(FORMATS))
    else:
        strip, folder = out / "strip.png", out
    return strip, [folder / f"frame_{i:0{width}d}.png" for i in range(frames)]


def check_output(out: Path, frames: int, force: bool = False,
                 sources: Sequence[Path] = ()) -> tuple[Path, list[Path]]:
    """The strip and frame paths, refused before any work if they exist (without `force`) or
    cannot be written: a file where the frames' folder goes, a symbolic link in the way. A
    folder --out is refused where fuse reads faces (a face's folder among `sources`, or in a
    group folder): strip.png and frame_*.png would lie among the faces, and a group would
    read them as faces next time."""
    strip, paths = output_paths(out, frames)
    if strip.parent == out:
        _refuse_among_faces(out, sources)
    check_outputs([strip, *paths], strip.parent, force)
    return strip, paths


def _refuse_among_faces(out: Path, sources: Sequence[Path]) -> None:
    place = out.resolve()
    for source in sources:
        if source.is_dir() and place.is_relative_to(source.resolve()):
            raise UserError("{} {}: that is in the group folder {}, and the group would read "
                            "fuse's strip and frames as faces; choose another {}", Option("out"),
                            out, source, Option("out"))
        if source.is_file() and place == source.resolve().parent:
            raise UserError("{} {}: {} is in that folder, and fuse's strip and frames would lie "
                            "among your faces; choose another {}", Option("out"), out, source,
                            Option("out"))


def _strip(fusion: Fusion) -> torch.Tensor:
    """The left original, the frames and the right original, [T + ends, 3, S, S]."""
    return torch.stack([*fusion.ends[:1], *fusion.frames, *fusion.ends[1:]])


def save_stacked(fusions: Sequence[Fusion], path: Path) -> Path:
    """The strips of fusions with as many frames, one row each (the report's Figures 11, 12)."""
    rows = [_strip(fusion) for fusion in fusions]
    return save_grid(torch.cat(rows), path, columns=len(rows[0]))


def write_pairs(fusions: Sequence[Fusion], out: Path, force: bool = False) -> dict[str, Any]:
    """`fuse --pairs`: the stacked strips as one image (no frames), refused if it exists."""
    strip, _ = check_output(out, 0, force)
    with all_or_nothing(strip.parent, "choose another {}", Option("out"),
                        overwrite=force):
        save_stacked(fusions, strip)
    return {"mode": "pairs", "method": fusions[0].info["method"],
            "pairs": [{"a": f.info["a"], "b": f.info["b"]} for f in fusions],
            "alphas": [round(v, 6) for v in fusions[0].values], "strip": str(strip)}


def write_fusion(fusion: Fusion, out: Path, force: bool = False) -> dict[str, Any]:
    """Writes the strip (left original, frames, right original) and each frame: all or none."""
    strip, frames = check_output(out, len(fusion.frames), force)
    row = _strip(fusion)
    with all_or_nothing(strip.parent, "choose another {}", Option("out"),
                        overwrite=force):
        save_grid(row, strip, columns=len(row))
        for image, path in zip(fusion.frames, frames):
            save_png(image, path)
    key = "strength" if fusion.mode == "attribute" else "a"
    return {"mode": fusion.mode, **fusion.info, "strip": str(strip),
            "frames": [{key: round(v, 6), "path": str(p)} for v, p in zip(fusion.values, frames)]}
