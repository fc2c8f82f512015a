r"""Output conventions: results on stdout, progress and logs on stderr (so pipes stay clean).

`TERMINAL` is the Feedback the commands hand to library code: notes become plain lines on
stderr (never interpreted as rich markup) and progress bars are drawn there too, when stderr is
a terminal.

Printed text is user data more often than not (paths, run and class names), so the consoles
interpret neither rich markup nor emoji codes (`[bold]`, `:smile:` print as written; styling is
done with `rich.text.Text`), and every name or message passes through `escape` first:

- a backslash prints as two (`\\`); tab, newline and carriage return as `\t`, `\n`, `\r`;
- any other control character (C0 and DEL) as `\xHH`, and a byte of a file name that is not
  UTF-8 (Python's surrogateescape) as `\xHH` too: what it stood for is exactly that byte;
- C1 controls (U+0080..U+009F), the line and paragraph separators (U+2028, U+2029) and the
  bidirectional embeddings, overrides and isolates (U+202A..U+202E, U+2066..U+2069) as the
  `\xHH` of each byte of their UTF-8 encoding.

So a name can neither forge lines or columns nor send escape sequences to the terminal, the
text always encodes as UTF-8, and the rule is undone exactly by
`os.fsdecode(codecs.escape_decode(text.encode())[0])` (classify's TSV relies on that). Where
stdout or stderr cannot encode a character (PYTHONIOENCODING=ascii, a C locale), it is written
as the `\xHH` of its UTF-8 bytes too (`prepare_streams`), so the same rule undoes it.
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import io
import json
import math
import os
import sys
from typing import Any, Iterator

from rich.console import Console

from fmtool.engine.text import escape, utf8_bytes
from fmtool.errors import UserError

__all__ = ["escape", "print_json", "prepare_streams", "progress", "stderr", "stdout", "TERMINAL"]


def _is_terminal(stream: Any) -> bool:
    """Whether `stream` is a terminal; False for a closed one (None when started with `>&-`)."""
    try:
        return stream is not None and stream.isatty()
    except (OSError, ValueError):
        return False


# Into a pipe or file rich would assume 80 columns, too few for a 10x10 confusion matrix.
stdout = Console(highlight=False, soft_wrap=True, markup=False, emoji=False,
                 width=None if _is_terminal(sys.stdout) else 120)
stderr = Console(stderr=True, highlight=False, soft_wrap=True, markup=False, emoji=False)

ENCODE_ERRORS = "fmtool-utf8-bytes"
codecs.register_error(ENCODE_ERRORS, utf8_bytes)


class _ClosedStdout(io.TextIOBase):
    """Stands in for a stdout the command was started without (`cmd >&-`): whatever the command
    writes into files is done by the time it prints, and printing is one line of error."""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        raise UserError("standard output is closed, so the results cannot be printed (files are "
                        "written); run the command with stdout open, or > /dev/null")

    def isatty(self) -> bool:
        return False


def prepare_streams() -> None:
    """Before a command runs: a closed stdout becomes `_ClosedStdout`; stdout and stderr escape
    what their encoding cannot write (see the module docstring) instead of failing on it."""
    if sys.stdout is None:
        sys.stdout = _ClosedStdout()
    if sys.stderr is None:  # `2>&-`: nowhere to say anything; the exit status still tells
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - for the life of the process
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors=ENCODE_ERRORS)
            except (OSError, ValueError) as exc:
                if getattr(exc, "errno", None) not in (None, errno.EBADF, errno.EPIPE):
                    raise


def print_json(data: Any) -> None:
    """One JSON document on stdout, strictly valid (RFC 8259) and ASCII.

    JSON has no NaN or Infinity: such a number prints as null, and the object it is in (the
    document, or each object of a list) gains "non_finite": {JSON pointer: "NaN" | "Infinity" |
    "-Infinity"} naming what each null stood for. Strings keep every character (as \\u escapes
    where not ASCII); a byte of a file name that is not UTF-8 shows as the surrogate "\\udcHH"
    that Python's surrogateescape gives it, so json.loads then os.fsencode returns the exact name.
    """
    if isinstance(data, list):
        data = [_with_non_finite(item) for item in data]
    else:
        data = _with_non_finite(data)
    sys.stdout.write(json.dumps(data, indent=2, allow_nan=False) + "\n")
    sys.stdout.flush()


def _with_non_finite(data: Any) -> Any:
    found: dict[str, str] = {}
    clean = _finite(data, "", found)
    if found and isinstance(clean, dict):
        clean["non_finite"] = found
    return clean


def _finite(value: Any, pointer: str, found: dict[str, str]) -> Any:
    """`value` with non-finite floats replaced by None, each recorded under its JSON pointer."""
    if isinstance(value, float) and not math.isfinite(value):
        found[pointer] = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        return None
    if isinstance(value, dict):
        return {key: _finite(item, f"{pointer}/{_pointer_part(key)}", found)
                for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item, f"{pointer}/{index}", found) for index, item in enumerate(value)]
    return value


def _pointer_part(key: object) -> str:
    return str(key).replace("~", "~0").replace("/", "~1")


def progress(transient: bool = False, disable: bool = False):
    """The one progress display every long command uses (rich, on stderr)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}", style="bold", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}", markup=False),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=stderr,
        transient=transient,
        disable=disable,
    )


class _Bars:
    """rich Progress with the `status` field every bar's columns expect filled in, and the
    descriptions and statuses escaped (they may name files)."""

    def __init__(self, bars: Any) -> None:
        self._bars = bars

    def add_task(self, description: str, total: float | None = None, completed: float = 0,
                 **fields: Any) -> Any:
        fields["status"] = escape(fields.get("status", ""))
        return self._bars.add_task(escape(description), total=total, completed=completed,
                                   **fields)

    def update(self, task: Any, **changes: Any) -> None:
        for key in ("description", "status"):
            if key in changes:
                changes[key] = escape(changes[key])
        self._bars.update(task, **changes)

    def advance(self, task: Any, advance: float = 1) -> None:
        self._bars.advance(task, advance)

    def remove_task(self, task: Any) -> None:
        self._bars.remove_task(task)


class TerminalFeedback:
    """Library feedback on the terminal: plain notes and rich progress bars on stderr."""

    def note(self, text: str) -> None:
        """One line: a newline in a note (from a file name, say) is escaped like the rest."""
        stderr.print(escape(text))

    @contextlib.contextmanager
    def progress(self, transient: bool = False) -> Iterator[_Bars]:
        # Only on a terminal: elsewhere (a log, a pipe, CI) rich would print each bar's final
        # state ("epochs ━━━ 1/1", "report ━━━ 5/9" before an error), or a blank line for a
        # transient one; the notes (a training run's line per epoch) say what matters there.
        with progress(transient=transient, disable=not stderr.is_terminal) as bars:
            yield _Bars(bars)


TERMINAL = TerminalFeedback()
