"""Which checkpoint a command reads: the one named, else the latest run, else the bundled model;
one line on stderr says which whenever fmtool chose it (the API's own rule, see
`fmtool.api.common.pick_checkpoint`)."""

from __future__ import annotations

from pathlib import Path

from fmtool.cli import output


def checkpoint_to_use(path: Path | None, kind: str) -> Path:
    from fmtool.api.common import pick_checkpoint

    return pick_checkpoint(path, kind, output.TERMINAL)
