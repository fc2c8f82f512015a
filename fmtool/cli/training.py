"""What `train cnn` and `train vae` add to `CNN.train` / `VAE.train`: the exit status and the
line that says how to continue after Ctrl-C or SIGTERM."""

from __future__ import annotations

import contextlib
from typing import Iterator

import typer

from fmtool.cli import output


@contextlib.contextmanager
def exit_on_stop(kind: str) -> Iterator[None]:
    """A training stopped by a signal (its last.pt safely written) exits with 128 + the signal,
    130 for Ctrl-C and 143 for SIGTERM, as shells expect, after saying how to resume."""
    from fmtool.engine.trainer import TrainingInterrupted

    try:
        yield
    except TrainingInterrupted as stopped:
        output.TERMINAL.note(f"stopped; continue with: fmtool train {kind} --name "
                             f"{stopped.run_dir.name} --resume")
        raise typer.Exit(128 + stopped.signal) from None
