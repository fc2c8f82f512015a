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
from typing import Annotated, Any, Iterator

import typer
from typer.core import TyperCommand, TyperGroup

from fmtool import __version__
from fmtool.cli import cnn, export, info, output, report, usage_errors, vae
from fmtool.cli.options import flag
from fmtool.engine.interrupt import Interrupted, signal_name, terminate_like_interrupt
from fmtool.errors import UserError


class _BareFlags:
    """Help shows a flag (--force, --json, -h) without typer's `<bool>`, which reads as if the
    flag took a value: `--force <bool>`. Mixed into every command and group of the app."""

    def get_params(self, ctx: Any) -> Any:
        params = super().get_params(ctx)  # type: ignore[misc]
        for param in params:
            if getattr(param, "is_flag", False):
                param.metavar = ""
        return params


class _Command(_BareFlags, TyperCommand):
    pass


class _Subgroup(_BareFlags, TyperGroup):
    pass


class _Group(_BareFlags, TyperGroup):
    """The error boundary: every UserError raised below becomes one line on stderr and exit 2,
    with library parameter names shown as the flags a user types and control characters (from
    file names, say) escaped by `output.escape`. Refused choices are UserErrors too (see
    `fmtool.choices.Choice.parse`). Click's usage errors (an option out of range, an unknown
    option or command, a missing argument) become one such line too (`usage_errors`), here
    rather than in `main` so that CliRunner and the console script print the same. Ctrl-C and
    SIGTERM end the command with one line and exit 128 + the signal (130, 143), after the
    clean-up that `engine.io` does on the way out."""

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        with _usage_errors_in_one_line():  # the top level's own options: fmtool --bogus
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: Any) -> Any:
        try:
            with _usage_errors_in_one_line():
                return super().invoke(ctx)
        except UserError as exc:
            typer.echo(f"error: {output.escape(exc.render(flag))}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except (Interrupted, KeyboardInterrupt) as exc:
            stopped = exc if isinstance(exc, Interrupted) else Interrupted(signal.SIGINT)
            typer.echo(f"stopped by {signal_name(stopped.signal)}", err=True)
            raise typer.Exit(stopped.exit_code) from None


@contextlib.contextmanager
def _usage_errors_in_one_line() -> Iterator[None]:
    try:
        yield
    except usage_errors.NO_ARGS_IS_HELP:
        raise  # `fmtool train` alone: typer has printed the help, which is the answer
    except usage_errors.UsageError as exc:
        typer.echo(f"error: {output.escape(usage_errors.one_line(exc))}", err=True)
        raise typer.Exit(exc.exit_code) from None


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
train_app = typer.Typer(cls=_Subgroup, no_args_is_help=True,
                        help="Train a model with the report's recipe (every value overridable).")
app.add_typer(train_app, name="train")


@app.callback(invoke_without_command=True)
def _root(version: Annotated[bool, typer.Option("--version", help="Print the version and exit.",
                                                is_eager=True)] = False) -> None:
    if version:
        typer.echo(f"fmtool {__version__}")
        raise typer.Exit()


app.command(cls=_Command)(info.info)
train_app.command("cnn", cls=_Command, help=cnn.TRAIN_HELP)(cnn.train_cnn)
app.command("eval", cls=_Command)(cnn.eval_)
app.command(cls=_Command)(cnn.classify)
app.command(cls=_Command)(cnn.project)
train_app.command("vae", cls=_Command)(vae.train_vae)
app.command(cls=_Command)(vae.reconstruct)
app.command(cls=_Command)(vae.fuse)
app.command(cls=_Command)(report.report)
app.command(cls=_Command)(export.export)


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
