"""The valid range of a number a user chooses, checked the same way wherever the number comes from.

A recipe field's range is written once, in its `knob(...)` (fmtool.engine.recipe); the command
line parses its option through `Bounds.parse`, and a recipe read back from run.json or a
checkpoint is checked with `Bounds.check`, so a value that could not be typed cannot be read
back either. Numbers are finite (NaN and infinity are refused: NaN passes every `<` test) and
integers are Python ints, never bools.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from fmtool.errors import Option, UserError


def _number(value: float) -> str:
    if isinstance(value, int) or float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:g}"


def plain_text(text: str) -> str:
    """Plain text inside a UserError template (whose {} are placeholders)."""
    return text.replace("{", "{{").replace("}", "}}")


@dataclass(frozen=True)
class Bounds:
    kind: type  # int or float
    min: float | None = None
    max: float | None = None
    min_open: bool = False
    max_open: bool = False
    multiple_of: int | None = None

    def short(self) -> str:
        """The range as help texts show it: `0<x<=10`, `x>=1`, `32<=x<=512, multiple of 32`."""
        low = "" if self.min is None else f"{_number(self.min)}{'<' if self.min_open else '<='}"
        high = "" if self.max is None else f"{'<' if self.max_open else '<='}{_number(self.max)}"
        if self.min is not None and self.max is None:
            text = f"x{'>' if self.min_open else '>='}{_number(self.min)}"
        else:
            text = f"{low}x{high}" if (low or high) else ("any integer" if self.kind is int
                                                          else "any finite number")
        return text + (f", multiple of {self.multiple_of}" if self.multiple_of else "")

    def describe(self) -> str:
        """The range in words, for error messages: `a number in (0, 10]`."""
        what = (f"a multiple of {self.multiple_of}" if self.multiple_of
                else "an integer" if self.kind is int else "a number")
        low, high = self.min, self.max
        if low is not None and high is not None:
            if self.kind is int:
                return f"{what} from {_number(low)} to {_number(high)}"
            return (f"{what} in {'(' if self.min_open else '['}{_number(low)}, "
                    f"{_number(high)}{')' if self.max_open else ']'}")
        if low is not None:
            return f"{what} {'above' if self.min_open else 'of at least'} {_number(low)}"
        if high is not None:
            return f"{what} {'below' if self.max_open else 'of at most'} {_number(high)}"
        return what if self.kind is int else "a finite number"

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.kind is int and not isinstance(value, int):
            return False
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if self.min is not None and (value <= self.min if self.min_open else value < self.min):
            return False
        if self.max is not None and (value >= self.max if self.max_open else value > self.max):
            return False
        return not (self.multiple_of and value % self.multiple_of)

    def check(self, name: str, value: Any, where: str = "") -> Any:
        """`value` (a float field's int as a float), or UserError naming the option and range;
        `where` (plain text, e.g. a file) starts the message."""
        if not self.accepts(value):
            shown = repr(value) if isinstance(value, str) else value
            raise UserError(plain_text(where) + "{} must be {}, got {}", Option(name),
                            self.describe(), shown)
        return float(value) if self.kind is float else value

    def parse(self, name: str, text: Any) -> Any:
        """A command-line value (a string) converted and checked; a bad one is a UserError."""
        if isinstance(text, (int, float)) and not isinstance(text, bool):
            return self.check(name, text)
        try:
            value = int(text) if self.kind is int else float(text)
        except (TypeError, ValueError):
            raise UserError("{} must be {}, got {!r}", Option(name), self.describe(),
                            text) from None
        return self.check(name, value)
