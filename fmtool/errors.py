"""One exception type for mistakes a user can fix; the CLI prints it as one line, no traceback.

Library code does not know the command line, so it never writes a flag into a message. Where a
message must name a value the user chose, it refers to it as an `Option` placeholder:

    raise UserError("{} must be positive, got {}", Option("limit"), limit)

The CLI renders the placeholder as the flag (`--limit`); anyone else sees the parameter's name.
Messages without placeholders are plain text and are never formatted (so braces in paths are safe).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Option:
    """A user-chosen value named in an error message, by its parameter name (e.g. "val_size")."""

    name: str


def bare_name(option: Option) -> str:
    return option.name


class UserError(Exception):
    """A problem the user can act on; the message says what to do."""

    exit_code = 2

    def __init__(self, message: str, *values: object) -> None:
        super().__init__(message, *values)
        self.template = message
        self.values = values

    def render(self, name: Callable[[Option], str] = bare_name) -> str:
        """The message, with each Option written as `name(option)`."""
        if not self.values:
            return self.template
        shown = [name(v) if isinstance(v, Option) else v for v in self.values]
        return self.template.format(*shown)

    def __str__(self) -> str:
        return self.render()
