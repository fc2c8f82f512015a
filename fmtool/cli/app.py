"""The `fmtool` command line: the app, its error boundary, and the commands registered on it.

cli/ is the only package that knows typer, flags and rich tables. Heavy libraries (torch,
torchvision, scikit-learn, matplotlib) are imported inside the commands, never at module level,
so `fmtool --help` and tab completion stay instant.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from fmtool import __version__
from fmtool.cli import cnn, export, info, output, report, vae
from fmtool.cli.options import flag
from fmtool.engine.interrupt import Interrupted, signal_name, terminate_like_interrupt
from fmtool.errors import UserError


class _Group(TyperGroup):
    """The error boundary: every UserError raised below becomes one line on stderr and exit 2,
    with library parameter names shown as the flags a user types and control characters (from
    file names, say) escaped by `output.escape`. Refused choices are UserErrors too (see
    `fmtool.choices.Choice.parse`). Ctrl-C and SIGTERM end the command with one line and exit
    128 + the signal (130, 143), after the clean-up that `engine.io` does on the way out."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except UserError as exc:
            typer.echo(f"error: {output.escape(exc.render(flag))}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except (Interrupted, KeyboardInterrupt) as exc:
            stopped = exc if isinstance(exc, Interrupted) else Interrupted(signal.SIGINT)
            typer.echo(f"stopped by {signal_name(stopped.signal)}", err=True)
            raise typer.Exit(stopped.exit_code) from None


_STOPPED = {128 + signal.SIGINT, 128 + signal.SIGTERM}

app = typer.Typer(
    cls=_Group,
    name="fmtool",
    help="Train, evaluate and explore the report's Fashion-MNIST CNN and LFW face VAE.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)
train_app = typer.Typer(help="Train a model with the report's recipe (every value overridable).",
                        no_args_is_help=True)
app.add_typer(train_app, name="train")


@app.callback(invoke_without_command=True)
def _root(version: Annotated[bool, typer.Option("--version", help="Print the version and exit.",
                                                is_eager=True)] = False) -> None:
    if version:
        typer.echo(f"fmtool {__version__}")
        raise typer.Exit()


app.command()(info.info)
train_app.command("cnn", help=cnn.TRAIN_HELP)(cnn.train_cnn)
app.command("eval")(cnn.eval_)
app.command()(cnn.classify)
app.command()(cnn.project)
train_app.command("vae")(vae.train_vae)
app.command()(vae.reconstruct)
app.command()(vae.fuse)
app.command()(report.report)
app.command()(export.export)


def main() -> None:
    """Console entry point (`fmtool`, `python -m fmtool`)."""
    terminate_like_interrupt()
    output.prepare_streams()
    try:
        app()
    except SystemExit as stop:
        if stop.code not in _STOPPED:
            raise
        # Stopped by a signal, with the clean-up done: leave now. Unloading torch and its
        # libraries takes seconds on a busy machine, and someone is waiting for the prompt.
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(stop.code)
