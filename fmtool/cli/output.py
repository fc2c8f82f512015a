"""Output conventions: results on stdout, progress and logs on stderr (so pipes stay clean).

`TERMINAL` is the Feedback the commands hand to library code: notes become plain lines on
stderr (never interpreted as rich markup) and progress bars are drawn there too.
"""

from __future__ import annotations

import contextlib
import json
import sys
from typing import Any, Iterator

from rich.console import Console

# Into a pipe or file rich would assume 80 columns, too few for a 10x10 confusion matrix.
stdout = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 120)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")
    sys.stdout.flush()


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
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=stderr,
        transient=transient,
        disable=disable,
    )


class _Bars:
    """rich Progress with the `status` field every bar's columns expect filled in."""

    def __init__(self, bars: Any) -> None:
        self._bars = bars

    def add_task(self, description: str, total: float | None = None, completed: float = 0,
                 **fields: Any) -> Any:
        fields.setdefault("status", "")
        return self._bars.add_task(description, total=total, completed=completed, **fields)

    def update(self, task: Any, **changes: Any) -> None:
        self._bars.update(task, **changes)

    def advance(self, task: Any, advance: float = 1) -> None:
        self._bars.advance(task, advance)

    def remove_task(self, task: Any) -> None:
        self._bars.remove_task(task)


class TerminalFeedback:
    """Library feedback on the terminal: plain notes and rich progress bars on stderr."""

    def note(self, text: str) -> None:
        stderr.print(text, markup=False)

    @contextlib.contextmanager
    def progress(self, transient: bool = False) -> Iterator[_Bars]:
        with progress(transient=transient) as bars:
            yield _Bars(bars)


TERMINAL = TerminalFeedback()
