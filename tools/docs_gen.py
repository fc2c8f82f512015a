"""Shell completions (bash, zsh, fish) and the man page, generated from the CLI's own commands.

`python -m tools.docs_gen` rewrites completions/ and man/fmtool.1 in the repository;
`python -m tools.docs_gen --check` exits 1 when a committed file no longer matches the commands
(tests/contracts/test_completions_man.py runs the same comparison). A developer tool: it lives outside the
fmtool package, so the wheel does not ship it.

Everything is read from the click command tree that Typer builds (`typer.main.get_command`;
Typer 0.29 vendors click as `typer._click`): commands, arguments, options, their help and
defaults. The text around them is in templates/, filled with `{{name}}` placeholders. Where the
man page's prose states a fact the code decides (which commands exit 1, which epoch best.pt
keeps, which commands read a checkpoint), the fact is read from the code, not written here.

The completion scripts are static on purpose: they carry the command tree as shell data, so
pressing Tab never starts Python. Typer/Click's own completion (`fmtool --install-completion`)
starts Python and imports fmtool on every Tab press: measured on a 2-core development machine,
`python -c "import fmtool.cli.app"` takes 0.1-0.2 s and one such Tab press
(`_FMTOOL_COMPLETE=complete_bash fmtool`) 0.3-0.4 s, where the static bash function answers in
under 10 ms.

Choices are taken from a choice type or from a metavar written as `a|b|c`; path options complete
files, or folders only when they refuse files.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import re
import string
import sys
import textwrap
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TEMPLATES = Path(__file__).resolve().parent / "templates"
GENERATOR = "python -m tools.docs_gen"
_CHOICES = re.compile(r"^[A-Za-z0-9_.-]+(\|[A-Za-z0-9_.-]+)+$")


class _Template(string.Template):
    """`{{name}}` placeholders, so the shell and roff text keep their own `$` and braces; a stray
    `{{` is an error rather than text."""

    # string.Template wants all four groups; `braced` and `escaped` never match.
    pattern = r"\{\{(?P<named>[a-z_]+)\}\}|(?P<braced>(?!))|(?P<escaped>(?!))|(?P<invalid>\{\{)"


def _fill(template: str, **values: str) -> str:
    """tools/templates/`template` with every placeholder filled (a missing value is a KeyError)."""
    return _Template((TEMPLATES / template).read_text()).substitute(values)


# -- the command tree, read once --------------------------------------------------------------

@dataclass(frozen=True)
class Param:
    """One option or argument, as the generators need it."""

    name: str  # the Python parameter name ("val_size"), to find an option by what it sets
    names: tuple[str, ...]  # option spellings, long ones first; empty for an argument
    negations: tuple[str, ...]  # --no-x spellings of a boolean flag
    metavar: str  # what the man page shows for the value; "" for a flag
    complete: str  # "" (flag), "text", "file", "dir", or "choice"
    choices: tuple[str, ...]
    help: str
    extras: str  # "[default: ...; range; required]" exactly as --help shows it
    many: bool = False  # an argument that takes several values
    required: bool = False

    @property
    def takes_value(self) -> bool:
        return self.complete != ""


@dataclass(frozen=True)
class Command:
    path: tuple[str, ...]  # () for fmtool itself, ("train", "cnn") for `fmtool train cnn`
    help: str
    options: tuple[Param, ...]
    arguments: tuple[Param, ...]
    subcommands: tuple[Command, ...]
    exits: frozenset[int] = frozenset()  # statuses its own code raises with typer.Exit(n)

    @property
    def name(self) -> str:
        return " ".join(("fmtool", *self.path))

    @property
    def summary(self) -> str:
        """The first sentence of the help, as completion menus show it."""
        first = self.help.split("\n\n")[0].replace("\n", " ").strip()
        return re.split(r"(?<=\.)\s", first, maxsplit=1)[0]

    def walk(self) -> list[Command]:
        return [self] + [c for sub in self.subcommands for c in sub.walk()]

    def usage(self) -> str:
        words = [self.name, "[OPTIONS]"]
        if self.subcommands:
            words.append("COMMAND")
        for arg in self.arguments:
            word = arg.metavar + ("..." if arg.many and not arg.metavar.endswith("...]") else "")
            words.append(word if arg.required or word.startswith("[") else f"[{word}]")
        return " ".join(words)


def _plain(markup: str) -> str:
    """Help text is rich markup (rich_markup_mode="rich"); the files get what users read."""
    from rich.text import Text

    return Text.from_markup(markup).plain


def _value_kind(param: Any) -> tuple[str, tuple[str, ...], str]:
    """(completion kind, choices, metavar) of a parameter's value."""
    desc = param.type_descriptor
    if desc.is_choice and desc.choices:
        choices = tuple(str(getattr(c, "value", c)) for c in desc.choices)
        return "choice", choices, param.metavar or "|".join(choices)
    if param.metavar and _CHOICES.match(param.metavar):
        return "choice", tuple(param.metavar.split("|")), param.metavar
    element = typing.get_args(desc.annotation)[0] if desc.is_list else desc.annotation
    if desc.is_path or desc.is_file or (isinstance(element, type) and issubclass(element, PurePath)):
        info = desc.parameter_info
        kind = "dir" if not getattr(info, "file_okay", True) or param.metavar == "DIR" else "file"
        default = {"dir": "DIR", "file": "FILE" if not getattr(info, "dir_okay", True) else "PATH"}
        return kind, (), param.metavar or default[kind]
    bare = param.bare_type()
    default_metavar = {"int": "N", "float": "X"}.get(bare, param.name.upper())
    return "text", (), param.metavar or default_metavar


def _param(param: Any, ctx: Any) -> Param:
    record = param.get_help_record(ctx)
    help_text = _plain(param.help or "")
    extras = record[1][len(param.help or ""):].strip() if record else ""
    if param.param_type_name == "argument":
        kind, choices, metavar = _value_kind(param)
        if not param.metavar:
            metavar = param.name.upper()
        return Param(param.name, (), (), metavar, kind, choices, help_text, extras,
                     many=param.nargs == -1, required=param.required)
    if param.is_flag:
        kind, choices, metavar = "", (), ""
    else:
        kind, choices, metavar = _value_kind(param)
    names = tuple(sorted(param.opts, key=lambda n: (not n.startswith("--"), n)))
    return Param(param.name, names, tuple(param.secondary_opts), metavar, kind, choices,
                 help_text, extras, required=param.required)


def _command(cmd: Any, ctx: Any, path: tuple[str, ...]) -> Command:
    from typer import _click

    params = [p for p in cmd.get_params(ctx) if not getattr(p, "hidden", False)]
    subcommands = []
    for name in cmd.list_commands(ctx) if hasattr(cmd, "list_commands") else []:
        sub = cmd.get_command(ctx, name)
        if sub is None or sub.hidden:
            continue
        sub_ctx = _click.Context(sub, info_name=name, parent=ctx)
        subcommands.append(_command(sub, sub_ctx, (*path, name)))
    return Command(
        path=path,
        help=_plain(cmd.help or ""),
        options=tuple(_param(p, ctx) for p in params if p.param_type_name == "option"),
        arguments=tuple(_param(p, ctx) for p in params if p.param_type_name == "argument"),
        subcommands=tuple(subcommands),  # in --help's order
        exits=_exit_codes(cmd.callback),
    )


def _exit_codes(callback: Callable[..., Any] | None) -> frozenset[int]:
    """The literal statuses of `raise typer.Exit(n)` in a command's own function, found in its
    source (not its help), so the man page cannot forget a command that exits with n."""
    if callback is None:
        return frozenset()
    tree = ast.parse(textwrap.dedent(inspect.getsource(inspect.unwrap(callback))))
    codes: set[int] = set()
    for node in ast.walk(tree):
        call = node.exc if isinstance(node, ast.Raise) else None
        if not isinstance(call, ast.Call) or not isinstance(call.func, (ast.Attribute, ast.Name)):
            continue
        name = call.func.attr if isinstance(call.func, ast.Attribute) else call.func.id
        values = call.args[:1] or [k.value for k in call.keywords if k.arg == "code"]
        if name == "Exit" and values and isinstance(values[0], ast.Constant):
            codes.add(values[0].value)
    return frozenset(codes)


def command_tree() -> Command:
    """fmtool's commands as Typer builds them for parsing (so nothing can drift)."""
    import typer
    from typer import _click

    from fmtool.cli.app import app

    root = typer.main.get_command(app)
    ctx = _click.Context(root, info_name="fmtool", **(root.context_settings or {}))
    return _command(root, ctx, ())


# -- bash -------------------------------------------------------------------------------------

def _sh(word: str) -> str:
    """Single-quoted for POSIX shells."""
    return "'" + word.replace("'", "'\\''") + "'"


def _value_word(param: Param) -> str:
    """What a bash/fish table says an option's value completes to."""
    if param.complete == "choice":
        return " ".join(param.choices)
    return "@" + param.complete


def bash_script(tree: Command) -> str:
    commands = tree.walk()
    sub_cases = [f"        {_sh(' '.join(c.path))}) echo {' '.join(s.path[-1] for s in c.subcommands)} ;;"
                 for c in commands if c.subcommands]
    option_cases = [f"        {_sh(' '.join(c.path))}) echo {' '.join(_all_names(c))} ;;"
                    for c in commands]
    value_cases = [f"        {_sh(' '.join((*c.path, name)))}) echo {_sh(_value_word(o))} ;;"
                   for c in commands for o in c.options if o.takes_value for name in o.names]
    argument_cases = [f"        {_sh(' '.join(c.path))}) echo @{c.arguments[0].complete} ;;"
                      for c in commands if c.arguments and c.arguments[0].complete != "text"]
    return _fill("fmtool.bash.tmpl", generator=GENERATOR, subcommands="\n".join(sub_cases),
                 options="\n".join(option_cases), values="\n".join(value_cases),
                 arguments="\n".join(argument_cases))


def _all_names(command: Command) -> list[str]:
    return [name for o in command.options for name in (*o.names, *o.negations)]


# -- zsh --------------------------------------------------------------------------------------

def _zsh_describe(text: str) -> str:
    """Text inside an _arguments '[...]' description, itself inside single quotes."""
    text = text.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]").replace(":", "\\:")
    return text.replace("'", "'\\''")


def _zsh_action(param: Param, label: str) -> str:
    action = {"choice": "(" + " ".join(param.choices) + ")", "file": "_files",
              "dir": "_files -/", "text": " "}[param.complete]
    return f":{_zsh_describe(label)}:{action}"


def _zsh_option(param: Param) -> str:
    every = (*param.names, *param.negations)
    exclude = f"({' '.join(every)})" if len(every) > 1 else ""
    if param.names == ("--help", "-h") or "--help" in param.names:
        exclude = "(- *)"
    value = _zsh_action(param, param.names[0].lstrip("-")) if param.takes_value else ""
    description = _zsh_describe(param.help)
    specs = []
    for names in (param.names, param.negations):
        if not names:
            continue
        spelled = names[0] if len(names) == 1 else "{" + ",".join(names) + "}"
        quoted_exclude = f"'{exclude}'" if exclude else ""
        specs.append(f"{quoted_exclude}{spelled}'[{description}]{value}'")
    return " \\\n    ".join(specs)


def _zsh_argument(param: Param) -> str:
    action = _zsh_action(param, param.metavar.strip("[].").lower())
    return f"'{'*' if param.many else '1'}{':' if not param.required else ''}{action}'"


def _zsh_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _zsh_function(command: Command) -> str:
    function = "_" + "_".join(("fmtool", *command.path)).replace("-", "_")
    specs = [_zsh_option(o) for o in command.options]
    if not command.subcommands:
        specs += [_zsh_argument(a) for a in command.arguments]
        return _fill("_fmtool-command.tmpl", function=function, specs=" \\\n    ".join(specs))
    specs += ["': :->command'", "'*:: :->argument'"]
    entries = [f"        {_zsh_quote(s.path[-1] + ':' + s.summary)}" for s in command.subcommands]
    cases = [f"        {s.path[-1]}) {function}_{s.path[-1].replace('-', '_')} ;;"
             for s in command.subcommands]
    return _fill("_fmtool-group.tmpl", function=function, specs=" \\\n    ".join(specs),
                 entries="\n".join(entries), label=_zsh_quote(command.name + " command"),
                 cases="\n".join(cases))


def zsh_script(tree: Command) -> str:
    functions = "\n".join(_zsh_function(c) for c in reversed(tree.walk()))
    return _fill("_fmtool.tmpl", generator=GENERATOR, functions=functions)


# -- fish -------------------------------------------------------------------------------------

def _fish(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def fish_script(tree: Command) -> str:
    commands = tree.walk()
    steps = [f"'{':'.join((' '.join(c.path), s.path[-1]))}'" for c in commands for s in c.subcommands]
    valued = [f"'{' '.join(c.path)}:{name}'" for c in commands for o in c.options
              if o.takes_value for name in o.names]
    lines = []
    for command in commands:
        where = f"-n {_fish('__fmtool_is ' + ' '.join(command.path))}"
        for sub in command.subcommands:
            lines.append(f"complete -c fmtool {where} -a {sub.path[-1]} -d {_fish(sub.summary)}")
        for option in command.options:
            for names in (option.names, option.negations):
                if not names:
                    continue
                spelled = " ".join(f"-l {n[2:]}" if n.startswith("--") else f"-s {n[1:]}"
                                   for n in names)
                value = ""
                if option.takes_value and names is option.names:
                    value = {"choice": f" -x -a {_fish(' '.join(option.choices))}",
                             "file": " -r -F",
                             "dir": " -x -a '(__fish_complete_directories)'",
                             "text": " -x"}[option.complete]
                lines.append(f"complete -c fmtool {where} {spelled}{value} -d {_fish(option.help)}")
        if command.arguments and command.arguments[0].complete in ("file", "dir"):
            kind = command.arguments[0].complete
            action = "-F" if kind == "file" else "-a '(__fish_complete_directories)'"
            lines.append(f"complete -c fmtool {where} {action}")
    return _fill("fmtool.fish.tmpl", generator=GENERATOR, steps=" ".join(steps),
                 valued=" ".join(valued), completions="\n".join(lines))


# -- the man page -----------------------------------------------------------------------------

def _roff(text: str) -> str:
    """Plain text -> roff: escapes, ASCII minus signs, no line starting with a control char."""
    out = text.replace("\\", "\\e").replace("-", "\\-")
    out = "".join(c if ord(c) < 128 else f"\\[u{ord(c):04X}]" for c in out)
    return "\n".join("\\&" + line if line[:1] in (".", "'") else line for line in out.split("\n"))


def _paragraphs(help_text: str) -> list[str]:
    return [" ".join(p.split()) for p in help_text.split("\n\n") if p.strip()]


def _man_option(param: Param) -> list[str]:
    spelled = ", ".join(f"\\fB{_roff(n)}\\fR" for n in param.names)
    if param.negations:
        spelled += " / " + ", ".join(f"\\fB{_roff(n)}\\fR" for n in param.negations)
    if param.takes_value:
        spelled += f" \\fI{_roff(param.metavar)}\\fR"
    body = _roff(param.help + (f"  {param.extras}" if param.extras else ""))
    return [".TP", spelled, body]


def _man_command(command: Command) -> list[str]:
    lines = [f'.SS "{_roff(command.usage())}"']
    for index, paragraph in enumerate(_paragraphs(command.help)):
        lines += ([] if index == 0 else [".PP"]) + [_roff(paragraph)]
    for argument in command.arguments:
        lines += [".TP", f"\\fI{_roff(argument.metavar)}\\fR",
                  _roff(argument.help + (f"  {argument.extras}" if argument.extras else ""))]
    for option in command.options:
        lines += _man_option(option)
    return lines


# What best.pt keeps, in words; a metric or mode not named here is a KeyError, not a guess.
_METRICS = {"val_acc": "validation accuracy", "test_acc": "test accuracy",
            "val_loss": "validation loss"}
_MODES = {"max": "highest", "min": "lowest"}


def best_checkpoint(tree: Command) -> str:
    """The FILES entry for last.pt and best.pt, with the epoch best.pt keeps as the training
    tasks select it (fmtool.cnn.task.selection_metric; VAETask's class attributes)."""
    from fmtool.cnn.recipes import RECIPES
    from fmtool.cnn.task import CNNTask, selection_metric
    from fmtool.vae.task import VAETask

    train_cnn = next(c for c in tree.walk() if c.path == ("train", CNNTask.kind))
    flag = next(o for o in train_cnn.options if o.name == "val_size").names[0]

    def chosen(metric: str, mode: str) -> str:
        return f"{_MODES[mode]} {_METRICS[metric]}"

    def recipes_with(held_out: bool) -> str:
        names = [name for name, r in RECIPES.items() if bool(r.val_size) == held_out]
        return ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]

    sizes = sorted({r.val_size for r in RECIPES.values() if r.val_size})
    held_out = chosen(selection_metric(sizes[0]), CNNTask.best_mode)
    on_test = chosen(selection_metric(0), CNNTask.best_mode)
    vae = chosen(VAETask.best_metric, VAETask.best_mode)
    return _roff(f"The resumable checkpoint of the last finished epoch, and the best one: for the "
                 f"{CNNTask.kind.upper()}, the epoch with the {held_out} on {flag} training "
                 f"images held out ({' or '.join(map(str, sizes))} in the {recipes_with(True)} "
                 f"recipes); with {flag} 0 (the {recipes_with(False)} recipe's, the report's "
                 f"protocol), the {on_test}; for the {VAETask.kind.upper()}, the epoch with the "
                 f"{vae}. Written atomically.")


def man_page(tree: Command) -> str:
    from fmtool import __version__

    leaves = [c for c in tree.walk() if not c.subcommands]
    synopsis: list[str] = []
    for index, command in enumerate(leaves):
        synopsis += ([] if index == 0 else [".br"]) + [
            f"\\fBfmtool {_roff(' '.join(command.path))}\\fR "
            + _roff(command.usage()[len(command.name) + 1:])]

    def names(commands: list[Command]) -> str:
        return _roff(", ".join(" ".join(c.path) for c in commands))

    return _fill(
        "fmtool.1.tmpl",
        generator=GENERATOR,
        version=__version__,
        summary=_roff(tree.summary[0].lower() + tree.summary[1:].rstrip(".")),
        synopsis="\n".join(synopsis),
        help=_roff(" ".join(tree.help.split())),
        options="\n".join(line for o in tree.options for line in _man_option(o)),
        commands="\n".join(line for c in leaves for line in _man_command(c)),
        checkpoint_commands=names([c for c in leaves if any(
            p.name == "checkpoint" for p in (*c.arguments, *c.options))]),
        partial_commands=names([c for c in leaves if 1 in c.exits]),
        best_checkpoint=best_checkpoint(tree),
    )


# -- the files --------------------------------------------------------------------------------

OUTPUTS: dict[str, Callable[[Command], str]] = {
    "completions/fmtool.bash": bash_script,
    "completions/_fmtool": zsh_script,
    "completions/fmtool.fish": fish_script,
    "man/fmtool.1": man_page,
}


def generate() -> dict[str, str]:
    """Relative path -> the text it should hold, for the commands as they are now."""
    tree = command_tree()
    return {path: make(tree) for path, make in OUTPUTS.items()}


def stale_files(root: Path = REPO) -> list[str]:
    """The generated files under `root` that are missing or differ from a fresh generation."""
    return [path for path, text in generate().items()
            if not (root / path).is_file() or (root / path).read_text() != text]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=GENERATOR, description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="Only report stale files (exit 1 if any), write nothing.")
    parser.add_argument("--root", type=Path, default=REPO,
                        help="Repository root to write into (default: this checkout).")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files(args.root)
        for path in stale:
            print(f"stale: {path}; regenerate with `{GENERATOR}`", file=sys.stderr)
        return 1 if stale else 0
    for path, text in generate().items():
        target = args.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
