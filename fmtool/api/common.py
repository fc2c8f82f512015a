"""What the CNN and VAE objects share: the device a call runs on, the checkpoint a load picks,
and the pictures a call accepts (files, Pillow images, arrays and tensors)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Optional, Sequence, TypeVar, Union

import numpy as np
from PIL import Image, ImageOps

from fmtool.data.images import ImageReadError
from fmtool.engine.feedback import LOGGED, Callback, Feedback
from fmtool.errors import UserError

if TYPE_CHECKING:
    import torch

# A picture as the API takes it: a file, a Pillow image, or an HxW / HxWxC array or tensor
# (uint8 0..255, or floats 0..1; outside that range is that picture's error, see `_from_array`).
Picture = Union[str, os.PathLike, Image.Image, np.ndarray, "torch.Tensor"]


# How a call reports progress: a Feedback object, a function called as
# callback(text, completed, total), or None (notes to the `fmtool` logger, no progress).
Progress = Union[Feedback, Callable[[str, Optional[float], Optional[float]], Any], None]


def feedback_or_default(feedback: Progress) -> Feedback:
    if feedback is None:
        return LOGGED
    if callable(feedback) and not hasattr(feedback, "note"):
        return Callback(feedback)
    return feedback  # type: ignore[return-value]


def as_device(device: "str | torch.device") -> "torch.device":
    """"auto" (CUDA, then MPS, then the CPU), "cpu", "cuda", "mps", or a torch.device."""
    import torch

    from fmtool.engine.device import choose_device

    return device if isinstance(device, torch.device) else choose_device(str(device))


def pick_checkpoint(checkpoint: str | os.PathLike | None, kind: str,
                    feedback: Feedback) -> Path:
    """The checkpoint a load reads: the one named ("builtin" for the bundled model, a .pt file
    or a run folder), else the latest run of `kind`, else the bundled model; a note says which
    whenever fmtool chose."""
    from fmtool.engine.runs import choose_checkpoint

    path, why = choose_checkpoint(None if checkpoint is None else Path(checkpoint), kind)
    if why is not None:
        feedback.note(f"using {why}: {path}")
    return path


def as_list(images: Picture | Sequence[Picture]) -> list[Picture]:
    """One picture or a sequence of them, as a list (an array is always one picture)."""
    if isinstance(images, (str, os.PathLike, Image.Image, np.ndarray)) or _is_tensor(images):
        return [images]  # type: ignore[list-item]
    return list(images)  # type: ignore[arg-type]


def as_source(picture: Picture) -> Path | Image.Image | ImageReadError:
    """A file's path; a picture in memory as a Pillow image, or, where it cannot be one (empty,
    misshapen, NaN, floats outside 0..1), the ImageReadError that becomes its result's error, as
    an unreadable file's does: one bad picture never stops the others. What is no picture at all
    (a number, a dict) is the call's mistake: a UserError."""
    if isinstance(picture, (str, os.PathLike)):
        return Path(picture)
    if isinstance(picture, Image.Image):  # upright, as a file is read (data.images.open_image)
        if 0 in picture.size:
            return ImageReadError(f"an empty picture ({picture.width}x{picture.height} pixels)")
        return ImageOps.exif_transpose(picture)
    if _is_tensor(picture):
        tensor = picture.detach().cpu()  # type: ignore[union-attr]
        picture = (tensor.float() if tensor.is_floating_point() else tensor).numpy()  # bf16 too
    if isinstance(picture, np.ndarray):
        try:
            return _from_array(picture)
        except ImageReadError as exc:
            return exc
    raise UserError(f"cannot read a picture from a {type(picture).__name__}; give a file path, a "
                    "PIL image, or an HxW or HxWxC array or tensor")


def _is_tensor(value: Any) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "detach")


def _from_array(array: np.ndarray) -> Image.Image:
    """An HxW (grey) or HxWx1/3/4 array: uint8 as 0..255, floats as 0..1, else ImageReadError.

    Floats outside 0..1 are refused, not clipped: they are nearly always 0..255 values in a
    float array, which clipping would turn into a white picture and a confident wrong answer."""
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        raise ImageReadError(f"an array picture must be HxW, HxWx3 or HxWx4, got shape "
                             f"{tuple(array.shape)}")
    if 0 in array.shape:
        raise ImageReadError(f"an empty picture ({array.shape[1]}x{array.shape[0]} pixels)")
    if array.dtype.kind == "f":
        if not np.isfinite(array).all():
            raise ImageReadError("an array picture holds NaN or infinite values")
        low, high = float(array.min()), float(array.max())
        if low < 0 or high > 1:
            raise ImageReadError(f"a float picture's values must be 0 to 1, got {low:g} to "
                                 f"{high:g}; divide 0..255 values by 255")
        array = np.round(array * 255.0).astype(np.uint8)
    elif array.dtype != np.uint8:
        raise ImageReadError(f"an array picture must be uint8 (0..255) or float (0..1), got "
                             f"{array.dtype}")
    return Image.fromarray(np.ascontiguousarray(array))


Model = TypeVar("Model", bound="TrainedModel")


@dataclass
class TrainedModel:
    """What `CNN` and `VAE` share: a network in eval mode on one device, its typed config, its
    checkpoint's file and metadata (recipe, data, epoch, metrics, card), and where the notes and
    progress of its long calls go (by default: notes to the `fmtool` logger, no progress)."""

    model: Any
    config: Any
    meta: dict[str, Any] = field(default_factory=dict)
    checkpoint: Path | None = None
    device: Any = None
    feedback: Progress = None

    kind: ClassVar[str]

    def __post_init__(self) -> None:
        self.device = as_device("cpu" if self.device is None else self.device)
        self.feedback = feedback_or_default(self.feedback)
        self.model = self.model.to(self.device).eval()

    @classmethod
    def load(cls: type[Model], checkpoint: str | os.PathLike | None = None, *,
             device: "str | torch.device" = "auto", feedback: Progress = None) -> Model:
        """A checkpoint's model: "builtin" (the one that ships with fmtool), a .pt file or a run
        folder (its best.pt); by default the latest run of this kind, else the bundled model."""
        feedback = feedback_or_default(feedback)
        path = pick_checkpoint(checkpoint, cls.kind, feedback)
        chosen = as_device(device)
        model, config, meta = cls._read(path, chosen)
        return cls(model, config, meta, path, chosen, feedback)

    @staticmethod
    def _read(path: Path, device: "torch.device") -> tuple[Any, Any, dict[str, Any]]:
        """The checkpoint's network, config and metadata (each model's own loader)."""
        raise NotImplementedError
