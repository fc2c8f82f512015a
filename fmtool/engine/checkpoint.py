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
from typing import Any, Callable, Protocol, TypeVar

import torch

from fmtool import __version__
from fmtool.engine.io import atomic_write
from fmtool.engine.schema import MetadataError
from fmtool.errors import UserError

# 2: a model is described by one `config` table (older files still load: see each config)
FORMAT_VERSION = 2
MAX_META_DEPTH = 16  # fmtool's own metadata is 3 levels deep


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
    except (TypeError, ValueError, RecursionError) as exc:
        raise UserError(f"{path} has unreadable metadata; it is damaged") from exc
    if not isinstance(meta, dict) or not isinstance(payload["model"], dict):
        raise UserError(f"{path} has malformed metadata or weights; it is damaged")
    if _depth(meta) > MAX_META_DEPTH:
        raise UserError(f"{path} has metadata nested more than {MAX_META_DEPTH} levels deep; "
                        "it is damaged or not from fmtool")
    kind = meta.get("kind")
    if expect_kind is not None and kind != expect_kind:
        raise UserError(
            f"{path} is a {str(kind).upper()} checkpoint, but this command needs a "
            f"{expect_kind.upper()} one; train one with `fmtool train {expect_kind}`"
        )
    return Checkpoint(meta=meta, model=payload["model"], train_state=payload.get("train_state"))


class ModelConfig(Protocol):
    """A model family's typed config (`CNNConfig`, `VAEConfig`): it builds its network."""

    def build(self) -> "torch.nn.Module": ...


Config = TypeVar("Config", bound=ModelConfig)


def load_model(path: Path, kind: str, read_config: Callable[[dict[str, Any]], Config],
               device: torch.device) -> tuple["torch.nn.Module", Config, dict[str, Any]]:
    """A checkpoint's model, built from its own config, in eval mode on `device`, with that
    config and the checkpoint's whole metadata (recipe, data, card, epoch, metrics).

    Nothing in the file is trusted: `read_config` (the model family's schema) checks the
    config's keys, types and ranges and raises MetadataError (or KeyError, TypeError,
    ValueError); the model is first built on torch's meta device, which allocates nothing, and
    its weights' names and shapes compared with the file's; then every weight must be floating
    point where the model's is, and finite. A file that fails any of this (edited, damaged, or a
    diverged run) is refused with one line rather than a traceback, a huge allocation or a model
    that prints numbers from NaN weights.
    """
    ckpt = load_checkpoint(path, expect_kind=kind)
    try:
        check_common_meta(ckpt.meta)
        config = read_config(ckpt.meta)
        with torch.device("meta"):
            shapes = config.build().state_dict()
        problem = weights_problem(ckpt.model, shapes)
        if problem is None:
            model = config.build()
            model.load_state_dict(ckpt.model)
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError) as exc:
        problem = _reason(exc)
    if problem is not None:
        raise UserError(f"{path} does not hold a usable {kind.upper()} model ({problem}); "
                        f"train one with `fmtool train {kind}`")
    return model.to(device).eval(), config, ckpt.meta


def check_common_meta(meta: dict[str, Any]) -> None:
    """What every checkpoint's metadata may carry besides its config: the epoch it was saved
    at, and tables of metrics, recipe, data, options and (bundled models) card."""
    epoch = meta.get("epoch", 0)
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise MetadataError(f"its epoch is {str(epoch)[:40]}, not a whole number")
    for key in ("metrics", "recipe", "data", "options", "card"):
        if not isinstance(meta.get(key, {}), dict):
            raise MetadataError(f"its {key} is not a table of values")


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    if isinstance(exc, KeyError):
        return f"its metadata lacks {text[:80]}"
    return text.splitlines()[0][:160] if text else type(exc).__name__


def weights_problem(weights: dict[str, Any], expected: dict[str, torch.Tensor]) -> str | None:
    """What is wrong with `weights` for a model whose state_dict is `expected` (tensors on any
    device, the meta device included), or None: a missing, extra or misshapen weight, one that is
    not floating point where the model's is (integer weights would be cast without a word), or
    NaN or infinity anywhere."""
    missing = [k for k in expected if k not in weights]
    extra = [k for k in weights if k not in expected]
    if missing or extra:
        what = f"no weight {missing[0]}" if missing else f"an unknown weight {str(extra[0])[:60]}"
        return f"{what}; the weights do not fit the architecture in its metadata"
    for key, want in expected.items():
        got = weights[key]
        if not isinstance(got, torch.Tensor):
            return f"weight {key} is not a tensor"
        if tuple(got.shape) != tuple(want.shape):
            return (f"weight {key} has shape {tuple(got.shape)}, the architecture in its "
                    f"metadata needs {tuple(want.shape)}")
        if want.is_floating_point() and not got.is_floating_point():
            return f"weight {key} is {str(got.dtype).replace('torch.', '')}, not floating point"
        if got.is_floating_point() and not bool(torch.isfinite(got).all()):
            return f"weight {key} holds NaN or infinite values (did the training diverge?)"
    return None


def _depth(value: Any) -> int:
    """How deeply lists and tables nest in `value` (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        for child in children:
            if isinstance(child, (dict, list)):
                if level + 1 > MAX_META_DEPTH:
                    return level + 1
                stack.append((child, level + 1))
        deepest = max(deepest, level + (1 if isinstance(item, (dict, list)) else 0))
    return deepest
