"""How well a VAE checkpoint reconstructs the faces of people it never saw: the figures of a
model card (and of `fmtool report`), measured as `fmtool reconstruct` makes its faces.

The held-out people are recomputed from the faces folder given, with the checkpoint's own
validation share, as `train vae` split its folder. That is the split training held out only if
the folder is the one it trained on (a full LFW download of 13,233 images splits differently
from a 12,445-image copy), so the split is checked against what the checkpoint recorded of its
own (`meta["data"]`: how many faces and people it held out, and from where) and the result says
whether it matches.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from fmtool.data.faces import HeldOutFaces, held_out_faces, to_unit
from fmtool.engine.batching import chunks
from fmtool.engine.feedback import SILENT, Feedback
from fmtool.metrics import float32_value
from fmtool.metrics import image as image_metrics
from fmtool.vae.config import VAEConfig
from fmtool.vae.inference import EVAL_BATCH, reconstruct
from fmtool.vae.recipes import PAPER


def held_out_of(config: VAEConfig, meta: dict[str, Any], data_dir: Path | None,
                feedback: Feedback = SILENT, option: str = "data_dir") -> HeldOutFaces:
    """The held-out faces of `data_dir` for a checkpoint: its validation share (from its
    metadata's recipe), its face size and crop."""
    return held_out_faces(data_dir, config.image_size, val_fraction_of(meta), feedback,
                          crop=config.crop, option=option)


def val_fraction_of(meta: dict[str, Any]) -> float:
    """The share of people the checkpoint's training held out (loading checked its range)."""
    return float((meta.get("recipe") or {}).get("val_fraction", PAPER.val_fraction))


def measure(model: Any, meta: dict[str, Any], held: HeldOutFaces,
            device: torch.device) -> dict[str, Any]:
    """Mean PSNR (dB) and SSIM of the reconstructions (decoding the mean code) of all the
    `held` faces, with how many faces and people, and whether that split is the one the
    checkpoint's training recorded (`split_matches`: True, False, or None when it records none;
    `split_note` says it in words)."""
    psnr, ssim = [], []
    for chunk in chunks(held.images, EVAL_BATCH):
        recons, originals = reconstruct(model, chunk, device), to_unit(chunk)
        psnr.append(image_metrics.psnr(recons, originals))
        ssim.append(image_metrics.ssim(recons, originals))
    nan = torch.full((1,), float("nan"))
    split = split_check(meta, held)
    return {"faces": len(held.files), "people": held.people, "val_fraction": val_fraction_of(meta),
            "psnr": float32_value(torch.cat(psnr or [nan]).mean()),
            "ssim": float32_value(torch.cat(ssim or [nan]).mean()), **split}


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _counted(n: int, noun: str) -> str:
    plural = {"person": "people"}.get(noun, noun + "s")
    return f"{n:,} {noun if n == 1 else plural}"


def split_check(meta: dict[str, Any], held: HeldOutFaces) -> dict[str, Any]:
    """Whether `held` is the split the checkpoint's training held out: the same number of
    held-out faces and people as it recorded (`split_matches` None when it recorded neither, or
    validated on a subset), with a sentence for people (`split_note`) and what was recorded."""
    data = meta.get("data") if isinstance(meta.get("data"), dict) else {}
    recorded = {key: data[key] for key in ("val_images", "val_people", "source") if key in data}
    faces, people = _count(data.get("val_images")), _count(data.get("val_people"))
    source = data.get("source") if isinstance(data.get("source"), str) else None
    of = f" of {source}" if source else ""
    here = f"{_counted(len(held.files), 'face')} of {_counted(held.people, 'person')}"
    options = meta.get("options") if isinstance(meta.get("options"), dict) else {}
    val_limit = _count(options.get("val_limit"))
    if faces is None and people is None:
        matches, note = None, (f"the checkpoint does not record the split its training held out, "
                               f"so it cannot be checked that the {here} held out of "
                               f"{held.root} are people it never saw")
    elif val_limit is not None:
        matches, note = None, (f"its training validated on {val_limit:,} held-out faces only "
                               f"(--val-limit), so its record cannot confirm that the {here} "
                               f"held out of {held.root} are the people it held out{of}")
    elif (faces is None or faces == len(held.files)) and (people is None or people == held.people):
        matches, note = True, (f"the same split as training: {here} held out{of}")
    else:
        trained = " of ".join(_counted(n, what) for n, what in ((faces, "face"), (people, "person"))
                              if n is not None)
        matches, note = False, (f"not the split the VAE was trained with: {held.root} gives {here} "
                                f"held out, but its training held out {trained}{of}; this is not "
                                "the faces folder it trained on, so some of these 'held-out' "
                                "people may have been in its training set")
    return {"split_matches": matches, "split_note": note, "recorded_split": recorded}
