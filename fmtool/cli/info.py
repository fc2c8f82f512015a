"""`fmtool info`: what fmtool would run on and where it keeps its files."""

from __future__ import annotations

from fmtool import __version__
from fmtool.cli import output
from fmtool.cli.options import JsonOpt


def info(json_out: JsonOpt = False) -> None:
    """Version, the device fmtool would choose, torch version and where files live."""
    import torch

    from fmtool.engine import paths
    from fmtool.engine.device import choose_device, describe

    device = choose_device("auto")
    data = {
        "fmtool": __version__,
        "torch": torch.__version__,
        "device": describe(device),
        "cache_dir": str(paths.cache_dir()),
        "datasets_dir": str(paths.datasets_dir()),
        "runs_dir": str(paths.runs_dir()),
    }
    if json_out:
        output.print_json(data)
        return
    for key, value in data.items():
        output.stdout.print(f"{key:<13} {value}", markup=False)
