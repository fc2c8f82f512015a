"""Option types every command shares, and how library names become command-line flags.

Like the rest of cli/, nothing heavy is imported here: `fmtool --help` and Tab stay instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer

from fmtool.choices import Choice, Device, Precision, Switch
from fmtool.cli.usage_errors import BadParameter
from fmtool.engine.bounds import Bounds
from fmtool.errors import Option, UserError

# Library parameters whose flag is not simply --parameter-name: a recipe's tta_flip is --tta,
# `CNN.project(save=...)` is project's --out, `CNN.export(path)` is export's --out.
FLAG_NAMES = {"tta_flip": "tta", "save": "out", "path": "out"}


def flag(option: Option) -> str:
    """The command-line flag of a library parameter name: "val_fraction" -> "--val-fraction"."""
    return "--" + FLAG_NAMES.get(option.name, option.name).replace("_", "-")


def choice(enum: type[Choice], name: str, help: str, *decls: str, **settings: Any) -> Any:
    """A typer.Option taking one of `enum`'s values (shown as a|b|c in help and completion).
    A wrong value is refused by `Choice.parse`, as one line: "unknown method 'umap'; choose ..."."""
    return typer.Option(*decls, help=help, parser=lambda value: _parse(enum, value, name),
                        metavar="|".join(member.value for member in enum), **settings)


def number_option(bounds: Bounds, name: str, help: str, *decls: str, **settings: Any) -> Any:
    """A typer.Option taking a number in `bounds`, its range shown at the end of the help.

    A value out of range, NaN or infinity (which typer's own ranges let through), or not a number
    at all is refused before the command starts, as one line that says the valid range:
    "--lr must be a number in (0, 10], got nan"."""
    shown = bounds.short()
    help = f"{help[:-2]}; {shown})." if help.endswith(").") else f"{help.rstrip('.')} ({shown})."
    return typer.Option(*decls, help=help, metavar="INTEGER" if bounds.kind is int else "FLOAT",
                        parser=lambda value: _refused_as_usage(bounds.parse, name, value),
                        **settings)


def _parse(enum: type[Choice], value: Any, name: str) -> Choice:
    return _refused_as_usage(enum.parse, value, name)


def _refused_as_usage(parse: Callable[..., Any], *args: Any) -> Any:
    """`parse(*args)`, its refusal raised as click's BadParameter (the UserError its cause), so
    that the error boundary gives it the same one line, with the pointer to the command's help,
    as typer's own range checks (`usage_errors`)."""
    try:
        return parse(*args)
    except UserError as exc:
        raise BadParameter(exc.render(flag)) from exc


DeviceOpt = Annotated[Device, choice(
    Device, "device", "auto prefers CUDA, then MPS, then the CPU.", "--device")]
PrecisionOpt = Annotated[Precision, choice(
    Precision, "precision", "Autocast dtype; auto = bf16 on CUDA and on CPUs with native bf16 "
    "(AVX512-BF16/AMX), else fp32.", "--precision")]
CompileOpt = Annotated[Switch, choice(
    Switch, "compile", "torch.compile the model; auto = on for CUDA unless the step runs as a "
    "CUDA graph, off on the CPU.", "--compile")]
CudaGraphOpt = Annotated[Switch, choice(
    Switch, "cuda_graph", "Replay each training step as one CUDA graph (a fixed batch's "
    "kernels launched at once); auto = on for CUDA when the step allows it (one process, bf16 "
    "or fp32, no --compile on).", "--cuda-graph")]
FashionDirOpt = Annotated[Optional[Path], typer.Option(
    "--data-dir", help="Folder with the four Fashion-MNIST IDX files (else $FMTOOL_FASHION_DIR, "
    "else downloaded into the cache).", file_okay=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout only.")]
NameOpt = Annotated[Optional[str], typer.Option(help="Run name (folder); default: date-time.")]
ResumeOpt = Annotated[bool, typer.Option(help="Continue the named (or latest) run where it stopped.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite files that already exist in the output.")]
