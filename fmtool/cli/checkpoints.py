"""Which checkpoint a command reads: the one named, else the latest run, else the bundled model;
one line on stderr says which whenever fmtool chose it."""

from __future__ import annotations

from pathlib import Path

from fmtool.cli import output


def checkpoint_to_use(path: Path | None, kind: str) -> Path:
    from fmtool.engine.runs import choose_checkpoint

    chosen, why = choose_checkpoint(path, kind)
    if why is not None:
        output.TERMINAL.note(f"using {why}: {chosen}")
    return chosen

