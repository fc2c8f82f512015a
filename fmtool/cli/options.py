"""Option types every command shares, and how library names become command-line flags.

Like the rest of cli/, nothing heavy is imported here: `fmtool --help` and Tab stay instant.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer

from fmtool.choices import Compile, Device, Precision
from fmtool.errors import Option

# Recipe fields whose flag is not simply --field-name.
FLAG_NAMES = {"tta_flip": "tta"}


def flag(option: Option) -> str:
    """The command-line flag of a library parameter name: "val_fraction" -> "--val-fraction"."""
    return "--" + FLAG_NAMES.get(option.name, option.name).replace("_", "-")


def either(words: list[str]) -> str:
    """['a', 'b', 'c'] -> 'a, b or c'."""
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


class ChoiceError(typer.BadParameter):
    """A refused choice, worded like every other fmtool error (the app prints it as one line)."""


def parse_choice(enum: type[Enum], name: str) -> Callable[[Any], Enum]:
    """A typer parser for `enum`'s values: "unknown method 'umap'; choose tsne or pca"."""
    words = [member.value for member in enum]

    def parse(value: Any) -> Enum:
        if isinstance(value, enum):
            return value
        try:
            return enum(value)
        except ValueError:
            raise ChoiceError(f"unknown {name} {value!r}; choose {either(words)}") from None

    return parse


def choice(enum: type[Enum], name: str, help: str, *decls: str, **settings: Any) -> Any:
    """A typer.Option taking one of `enum`'s values (shown as a|b|c in help and completion)."""
    return typer.Option(*decls, help=help, parser=parse_choice(enum, name),
                        metavar="|".join(member.value for member in enum), **settings)


DeviceOpt = Annotated[Device, choice(
    Device, "device", "auto prefers CUDA, then MPS, then the CPU.", "--device")]
PrecisionOpt = Annotated[Precision, choice(
    Precision, "precision", "Autocast dtype; auto = bf16 on CUDA and on CPUs with native bf16 "
    "(AVX512-BF16/AMX), else fp32.", "--precision")]
CompileOpt = Annotated[Compile, choice(
    Compile, "compile", "torch.compile the model; auto = on for CUDA, off on the CPU.", "--compile")]
FashionDirOpt = Annotated[Optional[Path], typer.Option(
    "--data-dir", help="Folder with the four Fashion-MNIST IDX files (else $FMTOOL_FASHION_DIR, "
    "else downloaded into the cache).", file_okay=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout only.")]
NameOpt = Annotated[Optional[str], typer.Option(help="Run name (folder); default: date-time.")]
ResumeOpt = Annotated[bool, typer.Option(help="Continue the named (or latest) run where it stopped.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite files that already exist in the output.")]
