"""How a training run is carried out, as opposed to what it learns (its recipe).

Run options are stored in run.json beside the recipe, so `--resume` continues a run exactly as it
was started: on the same subset of the data, in the same precision, compiled or not. Each model
family adds what only it has (`CNNRunOptions`, `VAERunOptions`). Reading them back checks every
value, since run.json is a file anyone can edit.

A count's range is written once, in its field (`count`): `check` holds every value to it, whether
it comes from a Python call, the command line or run.json, and `bounds` gives it to the command
line's options.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, TypeVar

from fmtool.choices import Precision, Switch, UnknownChoice
from fmtool.engine.bounds import Bounds, plain_text
from fmtool.errors import Option, UserError

Options = TypeVar("Options", bound="RunOptions")


def count(minimum: int) -> Any:
    """An optional count field (None: no limit) of at least `minimum`."""
    return dataclasses.field(default=None, metadata={"bounds": Bounds(int, minimum, None)})


@dataclass(frozen=True)
class RunOptions:
    """`limit`: train on a seeded subset of this many images (None: all of them);
    `precision`: autocast dtype (auto, bf16, fp16, fp32); `compile`: torch.compile (auto, on,
    off); `cuda_graph`: replay each step as one CUDA graph (auto, on, off)."""

    limit: int | None = count(1)
    precision: str = "auto"
    compile: str = "auto"
    cuda_graph: str = "auto"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def bounds(cls, name: str) -> Bounds:
        """The range of the count `name` (what the command line's option accepts)."""
        return {item.name: item for item in dataclasses.fields(cls)}[name].metadata["bounds"]

    def check(self: Options, where: str = "") -> Options:
        """These options if each count is None or in its range and each other value is a known
        word, else a UserError naming the option (and its range), starting with `where` (a
        damaged or edited run.json names itself there)."""
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if "bounds" in item.metadata:
                if value is not None:
                    item.metadata["bounds"].check(item.name, value, where)
            elif not (value is None or isinstance(value, str)):
                raise UserError(plain_text(where) + "{} must be a text, got {}", Option(item.name),
                                str(value)[:40])
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

    test_limit: int | None = count(1)


@dataclass(frozen=True)
class VAERunOptions(RunOptions):
    """`val_limit`: validate each epoch on this many held-out faces only; `data_dir`: the faces
    folder (None: LFW in fmtool's cache), kept so a resume trains on the same faces. The VAE's
    step is not written to be captured as a CUDA graph (see engine.graphs), so it is off. Its
    `limit` is at least 2: BatchNorm learns from a batch's spread, which one face has not."""

    limit: int | None = count(2)
    cuda_graph: str = "off"
    val_limit: int | None = count(1)
    data_dir: str | None = None
