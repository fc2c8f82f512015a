"""Click's usage errors (a flag out of range, an unknown option or command, a missing argument,
a folder given where a file is wanted) as the one `error:` line every other refusal is.

typer would print them as a usage line, a hint and a boxed message: four or five lines, unlike
fmtool's other errors, and awkward in a log or a test. `one_line` keeps click's facts (which
flag, which bound, what was given) and ends with where the help is:

    --top-k must be at least 1, got 0; see fmtool classify -h
"""

from __future__ import annotations

import re
from typing import Any

from fmtool.errors import UserError

try:
    from typer._click import exceptions as click  # recent typer carries its own copy of click
except ImportError:  # typer before that depends on click itself
    from click import exceptions as click  # type: ignore[no-redef]

# Raised (click 8.2 on) when a group that shows its help without arguments gets none; the help
# is then the answer, not an error. Older click prints the help and exits without raising.
NO_ARGS_IS_HELP: tuple[type[Exception], ...] = tuple(
    error for error in (getattr(click, "NoArgsIsHelpError", None),) if error is not None)
UsageError = click.UsageError
BadParameter = click.BadParameter

# pydantic's error types for typer's ranges (min=, max=), and how each bound reads.
_BOUNDS = {"greater_than_equal": ("ge", "at least"), "less_than_equal": ("le", "at most"),
           "greater_than": ("gt", "more than"), "less_than": ("lt", "less than")}
# pydantic's error types for a value that is no number at all.
_NUMBERS = {"int_parsing": "a whole number", "float_parsing": "a number"}
# typer's checks of a path option's kind: "dir 'shirt.jpg' is a file."
_PATH_KIND = re.compile(r"^\w+ (?P<path>.+) is a (?P<kind>file|directory)\.$")
_SUGGESTION = re.compile(r"\. Did you mean (?P<names>.+)\?$")


def one_line(error: click.UsageError) -> str:
    """The message of a usage error in one line, without `error: ` (the boundary adds it)."""
    message = _message(error)
    ctx = error.ctx
    if ctx is not None and ctx.command.get_help_option(ctx) is not None:
        message += f"; see {ctx.command_path} {ctx.help_option_names[0]}"
    return message


def _message(error: click.UsageError) -> str:
    param = getattr(error, "param", None)
    if isinstance(error, click.MissingParameter) and param is not None:
        return f"missing {param.param_type_name} {_name(param)}"
    if isinstance(error, click.NoSuchOption):
        known = sorted(error.possibilities or ())
        return f"no such option {error.option_name}" + (
            f" (did you mean {' or '.join(known)}?)" if known else "")
    if isinstance(error, click.BadParameter) and param is not None:
        return _bad_value(error, _name(param))
    text = _SUGGESTION.sub(r" (did you mean \g<names>?)", error.format_message())
    return _sentence_part(text)


def _bad_value(error: click.BadParameter, name: str) -> str:
    """A value refused: by fmtool's own parsers (`options.number_option`, `options.choice`),
    whose message is whole; by typer, a number out of range or no number, a path of the wrong
    kind."""
    cause = error.__cause__
    if isinstance(cause, UserError):
        return error.message
    problems = getattr(cause, "errors", None)  # a pydantic ValidationError
    if callable(problems) and problems():
        problem = problems()[0]
        given = problem.get("input")
        if problem["type"] in _BOUNDS:
            key, words = _BOUNDS[problem["type"]]
            return f"{name} must be {words} {problem['ctx'][key]}, got {given}"
        if problem["type"] in _NUMBERS:
            return f"{name} must be {_NUMBERS[problem['type']]}, got {given!r}"
    kind = _PATH_KIND.match(error.message)
    if kind is not None:
        if kind["kind"] == "file":
            return f"{name}: {kind['path']} is a file; give a folder"
        return f"{name}: {kind['path']} is a folder; give a file name"
    return f"{name}: {_sentence_part(error.message)}"


def _name(param: Any) -> str:
    """A parameter as the user writes it: an option's long flag, an argument's metavar."""
    if param.param_type_name == "option":
        return next((o for o in param.opts if o.startswith("--")), param.opts[0])
    return re.sub(r"[\[\].]", "", param.metavar or param.name.upper())


def _sentence_part(text: str) -> str:
    """Click's sentence as a part of ours: lower-case start, no final full stop."""
    text = text.rstrip(".")
    return text[:1].lower() + text[1:]
