"""Shell completions (bash, zsh, fish) and the man page, generated from the CLI's own commands.

`python -m tools.docs_gen` rewrites completions/ and man/fmtool.1 in the repository;
`python -m tools.docs_gen --check` exits 1 when a committed file no longer matches the commands
(tests/test_completions_man.py runs the same comparison).

Everything is read from the click command tree that Typer builds (`typer.main.get_command`):
commands, arguments, options, their help and defaults. The completion scripts are static on
purpose: they carry the command tree as shell data, so pressing Tab never starts Python (never
imports torch) and answers instantly. Choices are taken from a choice type or from a metavar
written as `a|b|c`; path options complete files, or folders only when they refuse files.
"""

from __future__ import annotations

import argparse
import re
import sys
import typing
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
GENERATOR = "python -m tools.docs_gen"
_CHOICES = re.compile(r"^[A-Za-z0-9_.-]+(\|[A-Za-z0-9_.-]+)+$")

# What the man page says beyond the per-command help: written once here, next to the generator.
DESCRIPTION = [
    "Every command has \\-\\-help. Results go to standard output, progress bars and logs to "
    "standard error, so pipes stay clean. With \\-\\-json a command prints machine-readable JSON "
    "and nothing else on standard output.",
    "Commands that read a checkpoint (eval, classify, project, reconstruct, fuse) take a .pt file "
    "or a run folder, and without one use the latest run of the right kind (its best.pt). "
    "Checkpoints load without executing code.",
    "A mistake the user can fix (a missing file, a damaged image or checkpoint, no checkpoint "
    "yet, no network for a download) prints one line starting with \"error:\" and no traceback.",
]
EXAMPLES = [
    ("Train the report's CNN briefly on a CPU, then continue the same run for two more epochs:",
     ["fmtool train cnn --limit 5000 --epochs 2 --name probe",
      "fmtool train cnn --name probe --resume --epochs 4"]),
    ("Test accuracy of the latest CNN run, as JSON for a script:",
     ["fmtool eval --json > eval.json"]),
    ("Classify two photos, two guesses each:",
     ["fmtool classify boot.jpg 'my shirt.png' --top-k 2"]),
    ("PCA pictures of three layers, as a vector figure:",
     ["fmtool project --layer conv9,linear1,output --method pca --out layers.svg"]),
    ("Train the face VAE at a CPU-friendly size, then reconstruct a folder of faces:",
     ["fmtool train vae --image-size 64 --epochs 20 --name faces64",
      "fmtool reconstruct my-faces/ --out recon/"]),
    ("Blend two faces in ten steps along a great circle of the latent space:",
     ["fmtool fuse a.jpg b.jpg --steps 10 --method slerp --out blend.png"]),
]
EXIT_STATUS = [
    ("0", "Success."),
    ("1", "Some inputs could not be used (classify, reconstruct): the others were processed and "
          "each failure was named on standard error."),
    ("2", "A usage error or a problem the user can fix; one line on standard error says what."),
    ("130", "Training stopped by Ctrl-C after saving a resumable checkpoint."),
]
ENVIRONMENT = [
    ("FMTOOL_HOME", "Moves everything fmtool writes under one folder: cache/ (data sets) and "
                    "data/ (runs). Tests and CI point it at a temporary folder."),
    ("FMTOOL_FASHION_DIR", "A folder with the four Fashion-MNIST IDX files (gzipped or not), "
                           "used when \\-\\-data\\-dir is not given instead of downloading."),
    ("FMTOOL_FACES_DIR", "A folder of face images, one sub-folder per person (like LFW), used by "
                         "train vae and fuse when \\-\\-data\\-dir is not given."),
    ("OMP_WAIT_POLICY", "project sets it to PASSIVE unless it is already set (t-SNE is much "
                        "faster on a shared CPU)."),
    ("NO_COLOR", "Turns off colour in progress and log output."),
]
FILES = [
    ("~/.cache/fmtool/datasets/", "Downloaded data sets (platformdirs' user cache folder; "
                                  "$FMTOOL_HOME/cache/datasets/ when FMTOOL_HOME is set). "
                                  "Safe to delete."),
    ("~/.local/share/fmtool/runs/KIND/NAME/", "One folder per training run, KIND being cnn or "
                                              "vae (platformdirs' user data folder; "
                                              "$FMTOOL_HOME/data/runs/ when FMTOOL_HOME is set)."),
    ("run.json", "The recipe and options a run was started with; \\-\\-resume reads them back."),
    ("metrics.jsonl", "One JSON line per finished epoch, each epoch exactly once."),
    ("last.pt, best.pt", "The resumable checkpoint of the last finished epoch, and the best "
                         "one (highest test accuracy, or lowest validation loss for the VAE). "
                         "Written atomically."),
    (".lock", "Held while a run trains, so a second process on the same run refuses."),
]


# -- the command tree, read once --------------------------------------------------------------

@dataclass(frozen=True)
class Param:
    """One option or argument, as the generators need it."""

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
    subcommands: tuple["Command", ...]

    @property
    def name(self) -> str:
        return " ".join(("fmtool", *self.path))

    @property
    def summary(self) -> str:
        """The first sentence of the help, as completion menus show it."""
        first = self.help.split("\n\n")[0].replace("\n", " ").strip()
        return re.split(r"(?<=\.)\s", first, maxsplit=1)[0]

    def walk(self) -> list["Command"]:
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
        return Param((), (), metavar, kind, choices, help_text, extras,
                     many=param.nargs == -1, required=param.required)
    if param.is_flag:
        kind, choices, metavar = "", (), ""
    else:
        kind, choices, metavar = _value_kind(param)
    names = tuple(sorted(param.opts, key=lambda n: (not n.startswith("--"), n)))
    return Param(names, tuple(param.secondary_opts), metavar, kind, choices, help_text, extras,
                 required=param.required)


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
    )


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
    return _BASH.format(
        header=_header("#"), subcommands="\n".join(sub_cases), options="\n".join(option_cases),
        values="\n".join(value_cases), arguments="\n".join(argument_cases),
    )


def _all_names(command: Command) -> list[str]:
    return [name for o in command.options for name in (*o.names, *o.negations)]


_BASH = r"""# bash completion for fmtool                                  -*- shell-script -*-
{header}
# Install: copy to ~/.local/share/bash-completion/completions/fmtool
# (or source it from ~/.bashrc).

# The subcommands of a command ("" is fmtool itself).
_fmtool_subcommands() {{
    case "$1" in
{subcommands}
    esac
}}

# The options of a command.
_fmtool_options() {{
    case "$1" in
{options}
    esac
}}

# What the value of an option completes to: its choices, @file, @dir or @text; nothing for a flag.
_fmtool_option_value() {{
    case "$1" in
{values}
    esac
}}

# What a command's positional arguments complete to.
_fmtool_arguments() {{
    case "$1" in
{arguments}
    esac
}}

_fmtool_paths() {{
    local IFS=$'\n'
    compopt -o filenames 2>/dev/null
    COMPREPLY=($(compgen "$1" -- "$cur"))
}}

_fmtool() {{
    local cur=${{COMP_WORDS[COMP_CWORD]}} prev='' command='' word sub value i skip=0
    COMPREPLY=()
    # Which (sub)command is being completed: skip options and the values they take.
    for ((i = 1; i < COMP_CWORD; i++)); do
        word=${{COMP_WORDS[i]}}
        [[ $word == = ]] && continue  # --option=value is split at '=' by COMP_WORDBREAKS
        if ((skip)); then skip=0; continue; fi
        if [[ $word == -* ]]; then
            [[ $word != *=* && -n $(_fmtool_option_value "${{command:+$command }}$word") ]] && skip=1
            continue
        fi
        for sub in $(_fmtool_subcommands "$command"); do
            if [[ $word == "$sub" ]]; then command=${{command:+$command }}$word; break; fi
        done
    done
    ((COMP_CWORD > 0)) && prev=${{COMP_WORDS[COMP_CWORD-1]}}
    if [[ $cur == = ]]; then
        cur=''
    elif [[ $prev == = ]] && ((COMP_CWORD > 1)); then
        prev=${{COMP_WORDS[COMP_CWORD-2]}}
    fi
    [[ $prev == -* ]] && value=$(_fmtool_option_value "${{command:+$command }}$prev")
    case $value in
        '') ;;
        @file) _fmtool_paths -f; return 0 ;;
        @dir) _fmtool_paths -d; return 0 ;;
        @text) return 0 ;;
        *) COMPREPLY=($(compgen -W "$value" -- "$cur")); return 0 ;;
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$(_fmtool_options "$command")" -- "$cur"))
        return 0
    fi
    local subcommands=$(_fmtool_subcommands "$command")
    if [[ -n $subcommands ]]; then
        COMPREPLY=($(compgen -W "$subcommands" -- "$cur"))
        return 0
    fi
    case $(_fmtool_arguments "$command") in
        @file) _fmtool_paths -f ;;
        @dir) _fmtool_paths -d ;;
    esac
    return 0
}}

complete -F _fmtool fmtool
"""


def _header(comment: str) -> str:
    return (f"{comment} Generated from fmtool's own commands by `{GENERATOR}`; do not edit.\n"
            f"{comment} Static on purpose: pressing Tab never starts Python.")


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
    name = "_" + "_".join(("fmtool", *command.path)).replace("-", "_")
    specs = [_zsh_option(o) for o in command.options]
    if not command.subcommands:
        specs += [_zsh_argument(a) for a in command.arguments]
        body = " \\\n    ".join(specs)
        return f"{name}() {{\n  _arguments -s -S \\\n    {body}\n}}\n"
    specs += ["': :->command'", "'*:: :->argument'"]
    body = " \\\n    ".join(specs)
    entries = "\n".join(f"        {_zsh_quote(s.path[-1] + ':' + s.summary)}"
                        for s in command.subcommands)
    cases = "\n".join(f"        {s.path[-1]}) {name}_{s.path[-1].replace('-', '_')} ;;"
                      for s in command.subcommands)
    return (f"{name}() {{\n"
            "  local curcontext=$curcontext state line\n"
            "  typeset -A opt_args\n"
            f"  _arguments -C -s \\\n    {body}\n"
            "  case $state in\n"
            "    command)\n"
            "      local -a commands\n"
            f"      commands=(\n{entries}\n      )\n"
            f"      _describe -t commands {_zsh_quote(command.name + ' command')} commands ;;\n"
            "    argument)\n"
            f"      case $words[1] in\n{cases}\n      esac ;;\n"
            "  esac\n"
            "}\n")


def zsh_script(tree: Command) -> str:
    functions = "\n".join(_zsh_function(c) for c in reversed(tree.walk()))
    return (f"#compdef fmtool\n{_header('#')}\n"
            "# Install: copy to a folder of your $fpath as _fmtool (e.g. ~/.zfunc/_fmtool with\n"
            "# fpath+=~/.zfunc before compinit in ~/.zshrc).\n\n"
            f"{functions}\n_fmtool \"$@\"\n")


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
    return _FISH.format(header=_header("#"), steps=" ".join(steps), valued=" ".join(valued),
                        completions="\n".join(lines))


_FISH = """# fish completion for fmtool
{header}
# Install: copy to ~/.config/fish/completions/fmtool.fish

function __fmtool_command --description 'The fmtool (sub)command on the command line, e.g. "train cnn"'
    set -l command
    set -l skip 0
    for token in (commandline -opc)[2..-1]
        if test $skip = 1
            set skip 0
            continue
        end
        switch "$command:$token"
            case {steps}
                set -a command $token
            case {valued}
                set skip 1
        end
    end
    string join ' ' $command
end

function __fmtool_is --description 'True when the command being completed is $argv'
    set -l command (__fmtool_command)
    test "$command" = "$argv"
end

complete -c fmtool -f
{completions}
"""


# -- the man page -----------------------------------------------------------------------------

def _roff(text: str) -> str:
    """Plain text -> roff: escapes, ASCII minus signs, no line starting with a control char."""
    out = text.replace("\\", "\\e").replace("-", "\\-")
    out = "".join(c if ord(c) < 128 else f"\\[u{ord(c):04X}]" for c in out)
    return "\n".join("\\&" + line if line[:1] in (".", "'") else line for line in out.split("\n"))


def _raw(text: str) -> str:
    """Like _roff for text already holding roff escapes (the constants above)."""
    return "\n".join("\\&" + line if line[:1] in (".", "'") else line for line in text.split("\n"))


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


def _man_command(command: Command, level: str = ".SS") -> list[str]:
    lines = [f'{level} "{_roff(command.usage())}"']
    for index, paragraph in enumerate(_paragraphs(command.help)):
        lines += ([] if index == 0 else [".PP"]) + [_roff(paragraph)]
    for argument in command.arguments:
        lines += [".TP", f"\\fI{_roff(argument.metavar)}\\fR",
                  _roff(argument.help + (f"  {argument.extras}" if argument.extras else ""))]
    for option in command.options:
        lines += _man_option(option)
    return lines


def man_page(tree: Command) -> str:
    from fmtool import __version__

    leaves = [c for c in tree.walk() if not c.subcommands]
    lines = [
        f'.\\" Generated from fmtool\'s own help by `{GENERATOR}`; do not edit.',
        f'.TH FMTOOL 1 "" "fmtool {__version__}" "User Commands"',
        ".nh",
        ".ad l",
        ".SH NAME",
        f"fmtool \\- {_roff(tree.summary[0].lower() + tree.summary[1:].rstrip('.'))}",
        ".SH SYNOPSIS",
    ]
    for index, command in enumerate(leaves):
        lines += ([] if index == 0 else [".br"]) + [
            f"\\fBfmtool {_roff(' '.join(command.path))}\\fR "
            + _roff(command.usage()[len(command.name) + 1:])]
    lines += [".SH DESCRIPTION", _roff(" ".join(tree.help.split()))]
    for paragraph in DESCRIPTION:
        lines += [".PP", _raw(paragraph)]
    lines += [".SH OPTIONS"]
    for option in tree.options:
        lines += _man_option(option)
    lines += [".SH COMMANDS"]
    for command in leaves:
        lines += _man_command(command)
    lines += [".SH EXAMPLES"]
    for text, commands in EXAMPLES:
        lines += [".PP", _roff(text), ".PP", ".RS 4", ".nf"]
        lines += [f"\\fB$ {_roff(c)}\\fR" for c in commands]
        lines += [".fi", ".RE"]
    lines += [".SH EXIT STATUS"]
    for code, meaning in EXIT_STATUS:
        lines += [".TP", f"\\fB{code}\\fR", _roff(meaning)]
    lines += [".SH ENVIRONMENT"]
    for name, meaning in ENVIRONMENT:
        lines += [".TP", f"\\fB{_roff(name)}\\fR", _raw(meaning)]
    lines += [".SH FILES"]
    for name, meaning in FILES:
        lines += [".TP", f"\\fI{_roff(name)}\\fR", _raw(meaning)]
    lines += [".SH SEE ALSO",
              "The README.md of the fmtool repository (installation, a tour, the JSON output "
              "of every command).", ""]
    return "\n".join(lines)


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
