"""Stopping on Ctrl-C (SIGINT) and SIGTERM without leaving half-written output behind.

SIGTERM is what `timeout`, schedulers and `docker stop` send. Python's default for it ends the
process on the spot, so `finally` blocks never run and the staging files of `engine.io` stay
in the output folder. `terminate_like_interrupt` makes SIGTERM raise `Interrupted` as Ctrl-C
raises KeyboardInterrupt, so the same clean-up runs for both (the CLI installs it for every
command and exits with 128 + the signal: 130 or 143).

Long loops ask for more: `stop_at_boundaries` turns the first signal into a request that the
loop honours at its next `check()` (the end of a batch), so the stop is prompt and happens at
a point where nothing is half done; a second signal aborts at once.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any, Iterator

from fmtool.engine.feedback import SILENT, Feedback

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """Raised when Ctrl-C or SIGTERM stopped the work; a BaseException, like KeyboardInterrupt,
    so that no `except Exception` takes it for a failure of one file or one step."""

    def __init__(self, signum: int) -> None:
        self.signal = int(signum)
        super().__init__(f"stopped by {signal_name(signum)}")

    @property
    def exit_code(self) -> int:
        """The shell's convention: 128 + the signal (130 for Ctrl-C, 143 for SIGTERM)."""
        return 128 + self.signal


def signal_name(signum: int) -> str:
    return "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _raise_interrupted(signum: int, frame: object) -> None:
    raise Interrupted(signum)


def terminate_like_interrupt() -> None:
    """SIGTERM raises `Interrupted` wherever the main thread is, as Ctrl-C does; one that comes
    before this (while Python starts) still ends the process at once, before any file is made."""
    if _in_main_thread():
        signal.signal(signal.SIGTERM, _raise_interrupted)


class StopRequest:
    """The first Ctrl-C or SIGTERM is noted and honoured at the next `check()`; a second one
    raises `Interrupted` at once, wherever the work is."""

    def __init__(self, feedback: Feedback, doing: str,
                 second: str = "Ctrl-C again to abort at once") -> None:
        self.feedback = feedback
        self.doing = doing
        self.second = second
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self.signal is not None

    def check(self) -> None:
        """Raises `Interrupted` if a stop was asked for (call it where nothing is half done)."""
        if self.signal is not None:
            raise Interrupted(self.signal)

    def _handle(self, signum: int, frame: object) -> None:
        if self.signal is not None:
            raise Interrupted(signum)
        self.signal = signum
        self.feedback.note(f"{signal_name(signum)}: stopping {self.doing} ({self.second})")

    def __enter__(self) -> "StopRequest":
        if _in_main_thread():
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous = {}


@contextlib.contextmanager
def stop_at_boundaries(feedback: Feedback = SILENT,
                       doing: str = "after this file; nothing is kept") -> Iterator[StopRequest]:
    """A `StopRequest` for the duration of the block (see the module docstring)."""
    with StopRequest(feedback, doing) as request:
        yield request
