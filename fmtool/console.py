"""Output conventions: results on stdout, progress and logs on stderr (so pipes stay clean)."""

from __future__ import annotations

import sys

from rich.console import Console

# Into a pipe or file rich would assume 80 columns, too few for a 10x10 confusion matrix.
stdout = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 120)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def progress(transient: bool = False, disable: bool = False):
    """The one progress display every long command uses (rich, on stderr)."""
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

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
