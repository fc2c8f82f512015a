"""How a training run is carried out, as opposed to what it learns (its recipe).

Run options are stored in run.json beside the recipe, so `--resume` continues a run exactly as it
was started: on the same subset of the data, in the same precision, compiled or not. Each model
family adds what only it has (`CNNRunOptions`, `VAERunOptions`). Reading them back checks every
value, since run.json is a file anyone can edit.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, TypeVar

from fmtool.choices import Precision, Switch, UnknownChoice
from fmtool.errors import UserError

Options = TypeVar("Options", bound="RunOptions")


@dataclass(frozen=True)
class RunOptions:
    """`limit`: train on a seeded subset of this many images (None: all of them);
    `precision`: autocast dtype (auto, bf16, fp16, fp32); `compile`: torch.compile (auto, on,
    off); `cuda_graph`: replay each step as one CUDA graph (auto, on, off)."""

    limit: int | None = None
    precision: str = "auto"
    compile: str = "auto"
    cuda_graph: str = "auto"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def check(self: Options, where: str = "") -> Options:
        """These options if each is a count (at least 1) or a known word, else a UserError
        starting with `where` (a damaged or edited run.json names itself there)."""
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if item.name.endswith("limit"):
                good = value is None or (isinstance(value, int) and not isinstance(value, bool)
                                         and value >= 1)
            else:
                good = value is None or isinstance(value, str)
            if not good:
                raise UserError(f"{where}its option {item.name} is {str(value)[:40]!r}")
        try:
            Precision.parse(self.precision, "precision")
            Switch.parse(self.compile, "compile")
            Switch.parse(self.cuda_graph, "cuda_graph")
        except UnknownChoice as exc:
            raise UserError(f"{where}{exc}") from None
        return self

    @classmethod
    def from_dict(cls: type[Options], data: dict[str, Any], where: str = "") -> Options:
        """The options a run.json records. Keys that are not options are left out: run folders
        from before the recipe held every training value kept some of them here, and the
        recipe reads those."""
        if not isinstance(data, dict):
            raise UserError(f"{where}its options are not a table of values")
        known = {item.name for item in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known}).check(where)


@dataclass(frozen=True)
class CNNRunOptions(RunOptions):
    """`test_limit`: evaluate each epoch on this many test images only."""

    test_limit: int | None = None


@dataclass(frozen=True)
class VAERunOptions(RunOptions):
    """`val_limit`: validate each epoch on this many held-out faces only; `data_dir`: the faces
    folder (None: LFW in fmtool's cache), kept so a resume trains on the same faces. The VAE's
    step is not written to be captured as a CUDA graph (see engine.graphs), so it is off."""

    cuda_graph: str = "off"
    val_limit: int | None = None
    data_dir: str | None = None
