"""Checkpoints that load without executing code and carry their own metadata.

A checkpoint is a `torch.save` of plain containers and tensors, read back with
`weights_only=True`, so a file crafted to run code on load is refused instead. Metadata is
kept as a JSON string (kind, architecture, recipe, class names, normalisation, epoch, metrics)
so any tool can read it. Writes go to a temporary file that is renamed into place, so a crash
or a full disk never leaves a half-written checkpoint where a good one was.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from fmtool import __version__
from fmtool.errors import UserError

FORMAT_VERSION = 1


@dataclass
class Checkpoint:
    meta: dict[str, Any]
    model: dict[str, torch.Tensor]
    train_state: dict[str, Any] | None = field(default=None)

    @property
    def kind(self) -> str:
        return self.meta.get("kind", "?")


def save_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    """Atomically writes `checkpoint` to `path` (temp file in the same folder, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = dict(checkpoint.meta, fmtool_version=__version__)
    payload: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "meta": json.dumps(meta),
        "model": checkpoint.model,
    }
    if checkpoint.train_state is not None:
        payload["train_state"] = checkpoint.train_state
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise UserError(f"could not write checkpoint {path}: {exc.strerror or exc}; "
                            "free some space or choose a writable FMTOOL_HOME") from exc
        raise


def load_checkpoint(path: Path, expect_kind: str | None = None,
                    map_location: str | torch.device = "cpu") -> Checkpoint:
    """Reads a checkpoint without running code; refuses other kinds and newer formats."""
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated zip, random bytes, pickled code: all one answer
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "weights_only" in str(exc) or "Unsupported global" in str(exc):
            reason = "it holds Python objects that could run code, so it was not loaded"
        raise UserError(f"{path} is not a readable fmtool checkpoint ({reason[:160]})") from exc
    if not isinstance(payload, dict) or "meta" not in payload or "model" not in payload:
        raise UserError(f"{path} is not an fmtool checkpoint (no metadata found)")
    version = payload.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise UserError(f"{path} was written by a newer fmtool (format {version}); upgrade fmtool")
    try:
        meta = json.loads(payload["meta"])
    except (TypeError, ValueError) as exc:
        raise UserError(f"{path} has unreadable metadata; it is damaged") from exc
    kind = meta.get("kind")
    if expect_kind is not None and kind != expect_kind:
        raise UserError(
            f"{path} is a {str(kind).upper()} checkpoint, but this command needs a "
            f"{expect_kind.upper()} one; train one with `fmtool train {expect_kind}`"
        )
    return Checkpoint(meta=meta, model=payload["model"], train_state=payload.get("train_state"))
