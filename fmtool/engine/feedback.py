"""How library code talks to the person at the terminal without knowing there is one.

Lower layers never print. Long work takes a `Feedback`: `note` for a line of text (a skipped
file, a download starting) and `progress` for bars. The CLI passes one that draws on stderr with
rich; Python callers get `LOGGED` by default, which hands each note to the `fmtool` logger
(silent unless the application configures logging) and draws nothing; `SILENT` drops everything.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any, Callable, ContextManager, Iterator, Protocol


class ProgressBars(Protocol):
    """The part of rich.progress.Progress that fmtool uses."""

    def add_task(self, description: str, total: float | None = None, completed: float = 0,
                 **fields: Any) -> Any: ...

    def update(self, task: Any, **changes: Any) -> None: ...

    def advance(self, task: Any, advance: float = 1) -> None: ...

    def remove_task(self, task: Any) -> None: ...


class Feedback(Protocol):
    def note(self, text: str) -> None:
        """One line of plain text for the user (never interpreted as markup)."""

    def progress(self, transient: bool = False) -> ContextManager[ProgressBars]:
        """Progress bars for the duration of a `with` block."""


class _NoBars:
    def add_task(self, description: str, total: float | None = None, completed: float = 0,
                 **fields: Any) -> int:
        return 0

    def update(self, task: Any, **changes: Any) -> None:
        pass

    def advance(self, task: Any, advance: float = 1) -> None:
        pass

    def remove_task(self, task: Any) -> None:
        pass


class Silent:
    """Feedback that shows nothing: the default for library calls."""

    def note(self, text: str) -> None:
        pass

    @contextlib.contextmanager
    def progress(self, transient: bool = False) -> Iterator[ProgressBars]:
        yield _NoBars()


SILENT: Feedback = Silent()


class Logged(Silent):
    """Feedback for library calls: each note is an INFO record of the `fmtool` logger (so
    `logging.basicConfig(level=logging.INFO)` shows them), and progress draws nothing."""

    def note(self, text: str) -> None:
        logging.getLogger("fmtool").info(text)


LOGGED: Feedback = Logged()


class _JoinedBars:
    """Bars added to another display, remembered so that they can leave with the work."""

    def __init__(self, bars: ProgressBars) -> None:
        self._bars = bars
        self.tasks: list[Any] = []

    def add_task(self, description: str, total: float | None = None, completed: float = 0,
                 **fields: Any) -> Any:
        task = self._bars.add_task(description, total=total, completed=completed, **fields)
        self.tasks.append(task)
        return task

    def update(self, task: Any, **changes: Any) -> None:
        self._bars.update(task, **changes)

    def advance(self, task: Any, advance: float = 1) -> None:
        self._bars.advance(task, advance)

    def remove_task(self, task: Any) -> None:
        self.tasks.remove(task)
        self._bars.remove_task(task)


class Within:
    """Feedback for one step of a longer job that already shows its own bars: a terminal shows
    one live display at a time, so the step's bars join the job's and leave when the step ends."""

    def __init__(self, feedback: Feedback, bars: ProgressBars) -> None:
        self._feedback = feedback
        self._bars = bars

    def note(self, text: str) -> None:
        self._feedback.note(text)

    @contextlib.contextmanager
    def progress(self, transient: bool = False) -> Iterator[ProgressBars]:
        joined = _JoinedBars(self._bars)
        try:
            yield joined
        finally:
            for task in list(joined.tasks):
                joined.remove_task(task)


class Callback:
    """Feedback through one function a script supplies: `callback(text, completed, total)` on
    each change of a progress bar (its description, how far it is, out of how many; total None
    when unknown) and `callback(text, None, None)` for each note."""

    def __init__(self, callback: Callable[[str, float | None, float | None], Any]) -> None:
        self._callback = callback

    def note(self, text: str) -> None:
        self._callback(text, None, None)

    @contextlib.contextmanager
    def progress(self, transient: bool = False) -> Iterator[ProgressBars]:
        yield _CallbackBars(self._callback)


class _CallbackBars:
    def __init__(self, callback: Callable[[str, float | None, float | None], Any]) -> None:
        self._callback = callback
        self._bars: dict[int, dict[str, Any]] = {}

    def _changed(self, task: int) -> None:
        bar = self._bars[task]
        self._callback(bar["description"], bar["completed"], bar["total"])

    def add_task(self, description: str, total: float | None = None, completed: float = 0,
                 **fields: Any) -> int:
        task = len(self._bars)
        self._bars[task] = {"description": description, "completed": completed, "total": total}
        self._changed(task)
        return task

    def update(self, task: Any, **changes: Any) -> None:
        bar = self._bars[task]
        bar.update({key: changes[key] for key in ("description", "completed", "total")
                    if key in changes})
        bar["completed"] += changes.get("advance", 0)
        self._changed(task)

    def advance(self, task: Any, advance: float = 1) -> None:
        self._bars[task]["completed"] += advance
        self._changed(task)

    def remove_task(self, task: Any) -> None:
        self._bars.pop(task, None)
