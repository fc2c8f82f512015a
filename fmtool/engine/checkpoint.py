"""Checkpoints that load without executing code and carry their own metadata.

A checkpoint is a `torch.save` of plain containers and tensors, read back with
`weights_only=True`, so a file crafted to run code on load is refused instead. Metadata is
kept as a JSON string (kind, architecture, recipe, class names, normalisation, epoch, metrics)
so any tool can read it. Writes are atomic (fmtool.engine.io), so a crash or a full disk never
leaves a half-written checkpoint where a good one was.
"""

from __future__ import annotations

import json
import re
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from fmtool import __version__
from fmtool.engine.io import atomic_write
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
    """Atomically writes `checkpoint` to `path` (see `fmtool.engine.io.atomic_write`)."""
    meta = dict(checkpoint.meta, fmtool_version=__version__)
    payload: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "meta": json.dumps(meta),
        "model": checkpoint.model,
    }
    if checkpoint.train_state is not None:
        payload["train_state"] = checkpoint.train_state
    with atomic_write(path, what="checkpoint") as sink:
        torch.save(payload, sink)


def _pickled_callables(data: bytes) -> list[str]:
    """The module.name of each global a pickle would import (what a code payload calls)."""
    import pickletools

    found: list[str] = []
    strings: list[str] = []
    try:
        for opcode, arg, _ in pickletools.genops(data):
            if opcode.name == "GLOBAL":
                found.append(str(arg).replace(" ", "."))
            elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                found.append(".".join(strings[-2:]))
            elif isinstance(arg, str):
                strings.append(arg)
    except Exception:  # damaged pickles end the scan; what was found so far stands
        pass
    return found


def _pickle_of(path: Path, head: bytes) -> bytes:
    """The pickle inside a checkpoint: the file itself, or data.pkl of torch's zip format."""
    if head[:4] != b"PK\x03\x04":
        return head if head[:1] == b"\x80" else b""
    try:
        with zipfile.ZipFile(path) as archive:
            name = next((n for n in archive.namelist() if n.endswith("/data.pkl")), None)
            if name is None:
                return b""
            with archive.open(name) as member:
                return member.read(1 << 20)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return b""


def _unreadable_reason(path: Path, exc: Exception) -> str:
    """Why torch.load refused `path`, in words a user can act on."""
    text = str(exc)
    with open(path, "rb") as handle:
        head = handle.read(1 << 20)
    if not head:
        return "the file is empty"
    called = re.findall(r"GLOBAL ([\w.]+)", text) or [
        name for name in _pickled_callables(_pickle_of(path, head))
        if not name.startswith(("torch.", "collections."))]
    if called:
        return f"it could run code when loaded (it calls {called[0]}), so it was not loaded"
    if head[:4] == b"PK\x03\x04" or "zip archive" in text:
        return "it is truncated or damaged; copy it again or use another checkpoint"
    return "it is not a PyTorch checkpoint file (damaged, or another kind of file)"


def load_checkpoint(path: Path, expect_kind: str | None = None,
                    map_location: str | torch.device = "cpu") -> Checkpoint:
    """Reads a checkpoint without running code; refuses other kinds and newer formats."""
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist")
    try:
        with warnings.catch_warnings():  # torch warns about odd pickles; the error says enough
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated zip, random bytes, pickled code: never executed
        try:
            reason = _unreadable_reason(path, exc)
        except OSError as read_error:
            reason = read_error.strerror or str(read_error)
        raise UserError(f"{path} is not a readable fmtool checkpoint ({reason})") from exc
    if not isinstance(payload, dict) or "meta" not in payload or "model" not in payload:
        raise UserError(f"{path} is not an fmtool checkpoint (no metadata found)")
    version = payload.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise UserError(f"{path} was written by a newer fmtool (format {version}); upgrade fmtool")
    try:
        meta = json.loads(payload["meta"])
    except (TypeError, ValueError) as exc:
        raise UserError(f"{path} has unreadable metadata; it is damaged") from exc
    if not isinstance(meta, dict) or not isinstance(payload["model"], dict):
        raise UserError(f"{path} has malformed metadata or weights; it is damaged")
    kind = meta.get("kind")
    if expect_kind is not None and kind != expect_kind:
        raise UserError(
            f"{path} is a {str(kind).upper()} checkpoint, but this command needs a "
            f"{expect_kind.upper()} one; train one with `fmtool train {expect_kind}`"
        )
    return Checkpoint(meta=meta, model=payload["model"], train_state=payload.get("train_state"))


def load_model(path: Path, kind: str, build: Callable[[dict[str, Any]], "torch.nn.Module"],
               device: torch.device) -> tuple["torch.nn.Module", dict[str, Any]]:
    """A checkpoint's model, built from its own metadata, in eval mode on `device`.

    A file of the right kind whose metadata or weights do not fit the architecture (edited,
    or from an incompatible build) is refused with one line rather than a traceback.
    """
    ckpt = load_checkpoint(path, expect_kind=kind)
    try:
        model = build(ckpt.meta)
        model.load_state_dict(ckpt.model)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{path} does not hold a usable {kind.upper()} model ({reason}); "
                        f"train one with `fmtool train {kind}`") from exc
    return model.to(device).eval(), ckpt.meta
