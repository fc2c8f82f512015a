"""The VAE's half of the study: Figures 8-12, and the reconstruction numbers.

Choices:
- The reconstruction numbers are `measure`'s (fmtool.vae.evaluate): mean PSNR and SSIM
  over all the faces of the people the VAE's training held out, the faces folder split by person
  as `train vae` splits it (its validation share, seed 0): the figures a model card states.
  Whether that split is the one training held out (the same folder) is checked against what
  the checkpoint recorded, and the documents say so plainly when it is not.
- Figures 9 and 10 show 96 of those faces, drawn with the seed, one per person before anyone's
  second. Figure 9 puts 64 originals above their reconstructions, 8 by 8 each, as the report's
  Figure 9 shows 64 pairs; Figure 10 all 96 pairs, 12 a
  row; its caption also gives the PSNR and SSIM `fmtool reconstruct` gives for those 96.
- Figure 11 blends women's into men's faces from LFW's female_names.txt and male_names.txt,
  found in the faces folder or beside it; Figure 12 young into old faces from a pairs file (the
  one shipped, young_old_pairs.txt, unless one is given), as `fmtool fuse --pairs --steps 8`
  stacks them. Without the lists, or with the shipped pairs not in the faces folder, the figure
  is left out and the documents say why. In both, a pair with a face that cannot be read is
  left out, and the caption names it.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import torch

from fmtool.data.faces import to_unit
from fmtool.engine.io import write_text
from fmtool.errors import UserError
from fmtool.report import architecture, diagrams
from fmtool.report.study_folder import Study
from fmtool.vae.config import VAEConfig
from fmtool.vae.evaluate import held_out_of, measure
from fmtool.vae.figures import above_below, alternating, save_grid, save_png
from fmtool.vae.fuse import fuse_pair, group_files, read_pairs, save_stacked
from fmtool.vae.inference import reconstruct
from fmtool.vae.reconstruct import face_metrics, mean_metrics

FACES = 96  # Figure 10: 8 rows of 12 pairs
PAIRS_PER_ROW = 12
FIGURE9_FACES = 64  # the report's Figure 9: 64 faces, 8 a row
FUSION_ROWS = 4  # Figure 11
FUSION_STEPS = 8
GENDER_LISTS = ("female_names.txt", "male_names.txt")
YOUNG_OLD = Path(__file__).with_name("young_old_pairs.txt")


def vae_structure(study: Study, model: Any, config: VAEConfig) -> None:
    """Figure 8."""
    study.step("Figure 8: the VAE's structure")
    size = config.image_size
    units = architecture.trace(model, torch.zeros(1, 3, size, size, device=study.device))
    what = (f"{type(model).__name__}, {size}×{size} faces, {model.latent_dim}-dimensional code, "
            f"{architecture.parameter_count(model):,} parameters")
    diagrams.draw(units, what, study.path("vae"))
    study.figure("Figure 8", "The VAE", f"The VAE the checkpoint holds ({what}), traced from its "
                 "forward pass: the encoder, the two heads for the code's mean and log-variance, "
                 "the sampling step, the decoder (whose output a sigmoid turns into pixels). "
                 "Each box gives the shape of its output for one face.", ["vae"])


def figure9(originals: torch.Tensor, reconstructions: torch.Tensor) -> torch.Tensor:
    """The report's Figure 9: the first 64 faces, 8 a row, above their reconstructions."""
    return above_below(originals[:FIGURE9_FACES], reconstructions[:FIGURE9_FACES], columns=8)


def reconstructions(study: Study, model: Any, config: VAEConfig, meta: dict[str, Any], path: Path,
                    faces_dir: Path | None) -> dict[str, Any]:
    """Figures 9 and 10, and the reconstruction numbers: `measure`'s over all held-out
    faces (what a model card states), and `reconstruct`'s over the faces Figure 10 shows."""
    study.step("Figures 9, 10: reconstructions")
    held = held_out_of(config, meta, faces_dir, study.inner, option="faces_dir")
    root = held.root
    for file, reason in held.skipped:
        study.feedback.note(f"skipped {file}: {reason}")
    if not held.files:
        raise UserError(f"no readable face among the held-out people of {root}")
    measured = measure(model, meta, held, study.device)
    chosen = _figure_faces(held.persons, study.seed)
    files = [held.files[i] for i in chosen]
    images = held.images[chosen]
    originals = to_unit(images)
    recons = reconstruct(model, images, study.device)
    metrics = face_metrics(recons, originals)
    mean = mean_metrics([{k: float(v[i]) for k, v in metrics.items()} for i in range(len(files))])
    save_png(figure9(originals, recons), study.path("reconstructions"))
    save_grid(alternating(originals, recons), study.path("pairs"), columns=2 * PAIRS_PER_ROW)
    write_text(study.path("faces"), "".join(f"{f.relative_to(root).as_posix()}\n" for f in files))
    people = f"{measured['people']:,} {'person' if measured['people'] == 1 else 'people'}"
    everyone = f"all {measured['faces']:,} faces of the {people} held out"
    split = "" if measured["split_matches"] else f" Note: {measured['split_note']}."
    study.figure("Figure 9", "Faces and their reconstructions",
                 f"The first {min(FIGURE9_FACES, len(files))} faces of Figure 10 (above) and "
                 "their reconstructions (below), decoded from the mean code.", ["reconstructions"])
    study.figure("Figure 10", "Reconstructions, in pairs",
                 f"{len(files)} faces drawn with seed {study.seed}, one person at a time, from "
                 f"{everyone} from the VAE's training (the faces folder split by person as "
                 f"training splits it), each original followed by its reconstruction, "
                 f"{PAIRS_PER_ROW} pairs a row; the text file lists them. Over {everyone}: PSNR "
                 f"{measured['psnr']:.2f} dB, SSIM {measured['ssim']:.4f} (as the model card "
                 f"measures them); over the {len(files)} shown: PSNR {mean['psnr']:.2f} dB, SSIM "
                 f"{mean['ssim']:.4f}, as fmtool reconstruct measures them.{split}",
                 ["pairs", "faces"])
    study.measured["vae"] = {
        "checkpoint": str(path), "folder": str(root),
        **{key: measured[key] for key in ("faces", "people", "val_fraction", "psnr", "ssim",
                                          "split_matches", "split_note")},
        "figure10": {"images": len(files), "mean": mean, "faces": [str(f) for f in files]}}
    return study.measured["vae"]


def _figure_faces(persons: list[str], seed: int) -> list[int]:
    """Up to FACES of the held-out faces (indices), drawn with `seed` one per person before
    anyone's second (so many people show, not many of one)."""
    order = torch.randperm(len(persons), generator=torch.Generator().manual_seed(seed)).tolist()
    seen: Counter[str] = Counter()
    ranked = []  # (how many of this person come before, draw position, face index)
    for position, i in enumerate(order):
        ranked.append((seen[persons[i]], position, i))
        seen[persons[i]] += 1
    return [index for _, _, index in sorted(ranked)[:FACES]]


def fusion_figures(study: Study, model: Any, config: VAEConfig, root: Path,
                   pairs: Path | None) -> None:
    """Figures 11 and 12, or why they are left out."""
    study.step("Figure 11: women's faces into men's")
    lists = next((folder for folder in (root, root.parent)
                  if all((folder / name).is_file() for name in GENDER_LISTS)), None)
    if lists is None:
        study.figure("Figure 11", "Fusions: women into men", "", [],
                     f"LFW's {' and '.join(GENDER_LISTS)} are neither in {root} nor beside it")
    else:
        women, men = (group_files(lists / name, root, None) for name in GENDER_LISTS)
        chosen = list(zip(_pick(women, study.seed), _pick(men, study.seed + 1)))
        drawn, skipped = _fusions(study, model, config, chosen, "male_female")
        what = (f"women's faces (left) blended into men's (right), drawn with seed "
                f"{study.seed} from LFW's {' and '.join(GENDER_LISTS)}")
        if drawn:
            study.figure("Figure 11", "Fusions: women into men",
                         f"{len(drawn)} {what}: {_fusion_text(drawn, skipped)}", ["male_female"])
        else:
            study.figure("Figure 11", "Fusions: women into men", "", [],
                         f"no pair of the {what} could be read: {_skipped_text(skipped)}")

    study.step("Figure 12: young faces into old")
    try:
        chosen = read_pairs(pairs or YOUNG_OLD, root, study.inner)
    except UserError as exc:
        if pairs is not None:
            raise
        study.figure("Figure 12", "Fusions: young into old", "", [], str(exc))
        return
    source = (f"the pairs of {pairs}" if pairs is not None else "the pairs that ship with "
              f"fmtool ({YOUNG_OLD.name}: LFW images chosen by eye)")
    drawn, skipped = _fusions(study, model, config, chosen, "young_old")
    if drawn:
        study.figure("Figure 12", "Fusions: young into old",
                     f"Younger faces (left) blended into older ones (right), {source}: "
                     f"{_fusion_text(drawn, skipped)}", ["young_old"])
    else:
        study.figure("Figure 12", "Fusions: young into old", "", [],
                     f"no pair of {source} could be read: {_skipped_text(skipped)}")


def _pick(files: list[Path], seed: int) -> list[Path]:
    """FUSION_ROWS of `files`, drawn with `seed`."""
    order = torch.randperm(len(files), generator=torch.Generator().manual_seed(seed))
    return [files[i] for i in order[:FUSION_ROWS].tolist()]


def _fusions(study: Study, model: Any, config: VAEConfig, pairs: list[tuple[Path, Path]],
             role: str) -> tuple[list[tuple[Path, Path]], list[tuple[Path, Path, str]]]:
    """The strips of the pairs whose faces can be read, stacked into the role's file (none
    written when no pair can be); the pairs drawn, and those left out with why (said on the
    terminal too)."""
    fusions, drawn, skipped = [], [], []
    for a, b in pairs:
        try:
            fusions.append(fuse_pair(model, config, a, b, FUSION_STEPS, "lerp", study.device))
        except UserError as exc:  # an unreadable face: the pair is left out, as a missing one is
            skipped.append((a, b, str(exc)))
            study.feedback.note(f"{a.name} → {b.name} left out: {exc}")
        else:
            drawn.append((a, b))
    if fusions:
        save_stacked(fusions, study.path(role))
    return drawn, skipped


def _skipped_text(skipped: list[tuple[Path, Path, str]]) -> str:
    return "; ".join(f"{a.name} → {b.name} ({why})" for a, b, why in skipped)


def _fusion_text(pairs: list[tuple[Path, Path]], skipped: list[tuple[Path, Path, str]]) -> str:
    rows = "; ".join(f"{a.name} → {b.name}" for a, b in pairs)
    left_out = (f" Left out, a face could not be read: {_skipped_text(skipped)}." if skipped
                else "")
    return (f"each row decodes (1 − a)·z_A + a·z_B for {FUSION_STEPS} values of a from 0 to 1 "
            f"between the two originals. Rows: {rows}.{left_out}")
