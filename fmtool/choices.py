"""The closed sets of values that options take, as enums the command line validates.

Kept free of heavy imports: the CLI builds its options from these before torch is loaded.
Each member is its own value as a string (`Device.cpu == "cpu"`), so library code can take
either the enum or the plain word.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, TypeVar

from fmtool.errors import UserError

C = TypeVar("C", bound="Choice")


class UnknownChoice(UserError, ValueError):
    """A value outside an option's choices: a user's mistake, and a ValueError to library code."""


def either(words: list[str]) -> str:
    """['a', 'b', 'c'] -> 'a, b or c'."""
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


class Choice(str, Enum):
    """A str-valued enum that prints as its value (what the user typed)."""

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    @classmethod
    def parse(cls: type[C], value: Any, name: str) -> C:
        """The member for `value`, or one line naming the choices: the single check every
        option of this kind gets, from the command line and from library callers alike."""
        try:
            return cls(value)
        except ValueError:
            words = [member.value for member in cls]
            raise UnknownChoice(f"unknown {name} {value!r}; choose {either(words)}") from None


class Device(Choice):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"
    mps = "mps"


class Precision(Choice):
    auto = "auto"
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"


class Switch(Choice):
    """A speed-up that fmtool turns on where it pays (auto), or that the user forces."""

    auto = "auto"
    on = "on"
    off = "off"


class Variant(Choice):
    """The CNN as the report's text describes it, or as the author's published code builds it."""

    text = "text"
    code = "code"


class Decoder(Choice):
    """How the face VAE's decoder doubles its feature maps: the report's transposed
    convolutions, or nearest-neighbour upsampling followed by a convolution."""

    transposed = "transposed"
    upsample = "upsample"


class Invert(Choice):
    auto = "auto"
    always = "always"
    never = "never"


class ProjectionMethod(Choice):
    tsne = "tsne"
    pca = "pca"


class FigureFormat(Choice):
    png = "png"
    svg = "svg"
    pdf = "pdf"


class FusionMethod(Choice):
    lerp = "lerp"
    slerp = "slerp"


class Optimizer(Choice):
    adam = "adam"
    adamw = "adamw"


class Schedule(Choice):
    step = "step"
    onecycle = "onecycle"
    cosine = "cosine"


class ExportFormat(Choice):
    """A file that runs without fmtool: ONNX (onnxruntime and others) or TorchScript (torch)."""

    onnx = "onnx"
    torchscript = "torchscript"


class ModelKind(Choice):
    """fmtool's two model families, as their checkpoints name them."""

    cnn = "cnn"
    vae = "vae"
