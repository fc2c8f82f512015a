"""Models as files that run without fmtool: ONNX or TorchScript, with fmtool's metadata inside.

The model families (fmtool.cnn.export, fmtool.vae.export) wrap their networks in small modules
that take plain float tensors and do fmtool's preprocessing inside; this module turns such
modules into bytes and writes them.

- ONNX goes through torch.onnx's exporter (torch.export-based, `dynamo=True`: the default since
  PyTorch 2.9; the TorchScript-based one is deprecated), with a dynamic batch dimension. The
  metadata becomes the file's metadata_props: text as it is, structured values as JSON.
  onnx, onnxscript (the exporter's) and onnxruntime are the `export` extra, not dependencies.
- TorchScript is `torch.jit.trace_module`: the file loads with `torch.jit.load` alone, its
  methods (forward, or encode and decode) as traced. The metadata is one JSON document in the
  file's extra files (`fmtool.json`).

Every file is checked before it is written: loaded back (in onnxruntime, or torch.jit.load) and
run on seeded random inputs of another batch size than the trace's, its outputs compared with
the module's. Files are written atomically, several files all or nothing (fmtool.engine.io), so a
failure or Ctrl-C leaves no half-written or lone file.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch import nn

from fmtool.choices import ExportFormat
from fmtool.engine.io import all_or_nothing, atomic_write, check_outputs
from fmtool.errors import Option, UserError

SUFFIXES = {ExportFormat.onnx: (".onnx",), ExportFormat.torchscript: (".pt", ".pth")}
LABELS = {ExportFormat.onnx: "an ONNX", ExportFormat.torchscript: "a TorchScript"}
EXTRA_FILE = "fmtool.json"  # the TorchScript file's metadata document
EXTRA_MESSAGE = "ONNX export needs the export extra: pip install 'fmtool[export]'"
# Traced with one batch size, checked with another: a batch dimension baked in as a constant
# fails the check instead of failing for the user.
TRACE_BATCH = 2
CHECK_BATCH = 3
# fp32 kernels of the exporting and the running library sum in different orders; measured
# differences are about 1e-5 (see tests/engine/test_export.py), so this only catches a wrong graph.
CHECK_TOLERANCE = 1e-3
OPSET = 18
# The ONNX exporter's libraries log each graph pass at INFO (about 17 lines an export): noise to a
# script that turns INFO on to see fmtool's own notes, so they are held at WARNING meanwhile.
EXPORTER_LOGGERS = ("onnx_ir", "onnxscript", "torch.onnx")


@dataclass(frozen=True)
class Method:
    """One traced function of an exported model: its name in a TorchScript file (forward,
    encode, ...; an ONNX file holds the module's forward whatever the name), what it takes and
    gives (names for ONNX), and seeded example inputs for the trace and the check,
    `make(batch, generator)`."""

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    make: Callable[[int, torch.Generator], tuple[torch.Tensor, ...]]


def parse_format(format: str | ExportFormat, path: Path) -> ExportFormat:
    """`format` as an ExportFormat, refused when unknown or when `path`'s suffix belongs to
    another format (a .pt file that holds ONNX would puzzle whoever loads it)."""
    chosen = ExportFormat.parse(format, "export format")
    if path.suffix.lower() not in SUFFIXES[chosen]:
        wanted = " or ".join(SUFFIXES[chosen])
        raise UserError("{} {}: {} file's name ends in {}; rename it, or choose another {}",
                        Option("path"), path, LABELS[chosen], wanted, Option("format"))
    if chosen is ExportFormat.onnx:
        require_onnx()
    return chosen


def require_onnx() -> None:
    """Refuses ONNX export, before any work, where the export extra is not installed."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as exc:
        raise UserError(EXTRA_MESSAGE) from exc


def for_export(model: nn.Module) -> nn.Module:
    """A copy of `model` on the CPU in fp32 and eval mode: the caller's model stays where and
    as it is, and the file does not depend on the device it was exported from."""
    return copy.deepcopy(model).to("cpu", torch.float32).eval()


def metadata_props(metadata: dict[str, Any]) -> dict[str, str]:
    """ONNX metadata_props are text: strings stay as they are, everything else becomes JSON."""
    return {key: value if isinstance(value, str) else json.dumps(value)
            for key, value in metadata.items()}


def onnx_bytes(module: nn.Module, method: Method, metadata: dict[str, Any]) -> bytes:
    """`module`'s forward as a checked ONNX model with `metadata` in its metadata_props."""
    import onnx

    generator = torch.Generator().manual_seed(0)
    example = method.make(TRACE_BATCH, generator)
    batch = torch.export.Dim("batch")
    with torch.no_grad(), warnings.catch_warnings(), quiet_exporter():
        warnings.simplefilter("ignore")  # the exporter's notes on its own internals
        program = torch.onnx.export(
            module, example, dynamo=True, verbose=False, optimize=True, opset_version=OPSET,
            input_names=list(method.inputs), output_names=list(method.outputs),
            dynamic_shapes=tuple({0: batch} for _ in example))
    proto = program.model_proto
    onnx.helper.set_model_props(proto, metadata_props(metadata))
    proto.doc_string = str(metadata.get("description", ""))
    data = proto.SerializeToString()
    _check(module, method, lambda inputs: _run_onnx(data, method, inputs), "ONNX")
    return data


@contextlib.contextmanager
def quiet_exporter() -> Iterator[None]:
    """EXPORTER_LOGGERS at WARNING (or above, where the caller set them higher) for the block,
    each set back to its own level afterwards."""
    loggers = [logging.getLogger(name) for name in EXPORTER_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(max(logger.getEffectiveLevel(), logging.WARNING))
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _run_onnx(data: bytes, method: Method, inputs: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
    import onnxruntime

    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    feeds = {name: tensor.numpy() for name, tensor in zip(method.inputs, inputs)}
    return [torch.from_numpy(out) for out in session.run(list(method.outputs), feeds)]


def torchscript_bytes(module: nn.Module, methods: list[Method], metadata: dict[str, Any]) -> bytes:
    """`module`'s `methods` traced into one checked TorchScript file, `metadata` as its
    fmtool.json extra file."""
    generator = torch.Generator().manual_seed(0)
    examples = {m.name: m.make(TRACE_BATCH, generator) for m in methods}
    with torch.no_grad(), warnings.catch_warnings():
        # torch.jit is deprecated in favour of torch.export, but a TorchScript file is what
        # this format promises; fmtool's preprocessing compares shapes, which the tracer notes.
        warnings.simplefilter("ignore")
        traced = torch.jit.trace_module(module, examples)
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer, _extra_files={EXTRA_FILE: json.dumps(metadata)})
        data = buffer.getvalue()
        loaded = torch.jit.load(io.BytesIO(data))
    for method in methods:
        _check(getattr(module, method.name), method,
               lambda inputs, m=method: _outputs(getattr(loaded, m.name)(*inputs)), "TorchScript")
    return data


def _outputs(result: torch.Tensor | tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
    return list(result) if isinstance(result, (tuple, list)) else [result]


def _check(reference: Callable[..., Any], method: Method,
           run: Callable[[tuple[torch.Tensor, ...]], list[torch.Tensor]], label: str) -> None:
    """The exported function against `reference` (the module's) on fresh inputs of another
    batch size."""
    inputs = method.make(CHECK_BATCH, torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = _outputs(reference(*inputs))
        got = run(inputs)
    for name, want, have in zip(method.outputs, expected, got):
        difference = (want - have).abs().max().item() if want.shape == have.shape else float("inf")
        if not difference <= CHECK_TOLERANCE:
            raise UserError(f"the exported {label} {method.name} gives {name} that differ from the "
                            f"model's by {difference:.3g}; nothing was written; please report "
                            "this with your torch version")


def check_targets(paths: list[Path], force: bool) -> None:
    """Refuses, before any work, a target that is a folder, or one that exists unless `force`:
    an export takes minutes and must not replace a user's file by surprise (`fmtool export`
    refuses with the same words)."""
    check_outputs(paths, paths[0].parent, force, option="path")


def write_files(contents: dict[Path, bytes], overwrite: bool = True) -> list[Path]:
    """Writes each file atomically, all of them or none; returns their paths. Without
    `overwrite`, a file that appeared since `check_targets` fails the whole write. A failed
    write names the export's path (--out): it goes where the caller says, not under
    FMTOOL_HOME."""
    with all_or_nothing(None, "choose another {}", Option("path"), overwrite=overwrite):
        for path, data in contents.items():
            with atomic_write(path, what="exported model") as sink:
                sink.write(data)
    return list(contents)
