"""Typed configs read back from plain data: one strict reader that every model's config uses.

A model's config (`fmtool.cnn.config.CNNConfig`, `fmtool.vae.config.VAEConfig`) is a frozen
dataclass stored in its checkpoint as a plain table. Nothing in a file is trusted, so reading one
back refuses keys the dataclass does not know, missing keys (fmtool stores every field, so a
default never stands in for a lost value) and values of the wrong type, before the config's own
range checks run. A bool is never taken for a number, a float field takes an int, and a tuple
field takes a list (JSON has no tuples).
"""

from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any, TypeVar

from fmtool.errors import Option, UserError

C = TypeVar("C")


class MetadataError(ValueError):
    """A checkpoint's metadata does not fit its model's schema."""


class ConfigError(UserError, MetadataError):
    """A config value outside what fmtool trains, found as the config is made. Whoever made it
    in Python gets a UserError naming the field, the value and the range; a checkpoint's loader
    (which reports a ValueError with the file's name) gets a MetadataError."""


def check_range(name: str, value: Any, bounds: Any) -> Any:
    """`value` if `bounds` (a fmtool.engine.bounds.Bounds) accepts it, as a float for a float
    range; else a ConfigError: "width must be a number in [0.05, 4], got -1"."""
    if not bounds.accepts(value):
        raise ConfigError("{} must be {}, got {}", Option(name), bounds.describe(), _shown(value))
    return float(value) if bounds.kind is float else value


def _fits(value: Any, kind: Any) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return (isinstance(value, (int, float)) and not isinstance(value, bool)
                and math.isfinite(value))
    if kind is str:
        return isinstance(value, str)
    if typing.get_origin(kind) is tuple:
        items = typing.get_args(kind)
        if not isinstance(value, (list, tuple)):
            return False
        if len(items) == 2 and items[1] is Ellipsis:
            return all(_fits(item, items[0]) for item in value)
        return len(value) == len(items) and all(_fits(v, k) for v, k in zip(value, items))
    raise TypeError(f"schema.read_config cannot check values of type {kind}")


def _wanted(kind: Any) -> str:
    """A type as the error message names what was expected."""
    words = {bool: "true or false", int: "a whole number", float: "a number", str: "a text"}
    if kind in words:
        return words[kind]
    items = typing.get_args(kind)
    if len(items) == 2 and items[1] is Ellipsis:
        return f"a list of {_wanted(items[0]).removeprefix('a ')}s"
    return f"a list of {len(items)} {_wanted(items[0]).removeprefix('a ')}s"


def _converted(value: Any, kind: Any) -> Any:
    if kind is float:
        return float(value)
    if typing.get_origin(kind) is tuple:
        return tuple(value)
    return value


def _shown(value: Any) -> str:
    return f"'{value[:40]}'" if isinstance(value, str) else str(value)[:40]


def read_config(cls: type[C], data: Any, what: str = "config") -> C:
    """`cls` built from the plain table `data`, or MetadataError naming the first problem."""
    if not isinstance(data, dict):
        raise MetadataError(f"its {what} is not a table of values")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = [str(key) for key in data if key not in fields]
    if unknown:
        raise MetadataError(f"its {what} has an unknown key {unknown[0][:40]!r}")
    types = typing.get_type_hints(cls)
    values = {}
    for name in fields:
        if name not in data:  # fmtool stores every field: a missing one is damage
            raise MetadataError(f"its {what} lacks {name}")
        if not _fits(data[name], types[name]):
            raise MetadataError(f"its {name} is {_shown(data[name])}, not {_wanted(types[name])}")
        values[name] = _converted(data[name], types[name])
    return cls(**values)


def plain(config: Any) -> dict[str, Any]:
    """A config as the plain table a checkpoint stores (tuples become lists, as JSON has them)."""
    return {key: list(value) if isinstance(value, tuple) else value
            for key, value in dataclasses.asdict(config).items()}
