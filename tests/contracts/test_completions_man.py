"""Shell completions and the man page: committed, generated from the app, and working.

The staleness test always runs; the tests that drive a real shell or `man` skip when that
program is missing.
"""

from __future__ import annotations

import inspect
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tools import docs_gen

REPO = Path(__file__).resolve().parents[2]
REGENERATE = "python -m tools.docs_gen"


@pytest.fixture(scope="module")
def tree() -> docs_gen.Command:
    return docs_gen.command_tree()


@pytest.fixture(scope="module")
def page(tree) -> str:
    """The man page as the generator writes it now (the staleness test ties it to the file)."""
    return docs_gen.man_page(tree)


def _commands(tree: docs_gen.Command) -> dict[str, docs_gen.Command]:
    return {" ".join(c.path): c for c in tree.walk()}


def _unroff(text: str) -> str:
    """What a reader sees of a roff line: no font switches, plain minus signs."""
    return re.sub(r"\\f[BIR]", "", text).replace("\\-", "-").replace("\\&", "")


def _man_entries(page: str, section: str) -> dict[str, str]:
    """A section's .TP entries: tag -> text, both as a reader sees them."""
    body = page.split(f"\n.SH {section}\n")[1].split("\n.SH ")[0]
    return {_unroff(tag): _unroff(text)
            for tag, text in re.findall(r"^\.TP\n(.*)\n(.*)$", body, re.MULTILINE)}


def test_committed_completions_and_man_page_match_the_commands():
    for path, text in docs_gen.generate().items():
        committed = REPO / path
        assert committed.is_file(), f"{path} is missing; create it with `{REGENERATE}`"
        assert committed.read_text() == text, (
            f"{path} no longer matches fmtool's commands and options; "
            f"regenerate it with `{REGENERATE}` and commit the result")


def test_check_mode_names_stale_files(tmp_path: Path, capsys):
    assert docs_gen.main(["--root", str(tmp_path)]) == 0
    assert docs_gen.main(["--check", "--root", str(tmp_path)]) == 0
    (tmp_path / "completions" / "fmtool.fish").write_text("# edited by hand\n")
    assert docs_gen.main(["--check", "--root", str(tmp_path)]) == 1
    assert f"stale: completions/fmtool.fish; regenerate with `{REGENERATE}`" in capsys.readouterr().err


def test_tree_holds_every_command(tree):
    assert set(_commands(tree)) == {"", "info", "eval", "classify", "project", "reconstruct",
                                    "fuse", "report", "export", "train", "train cnn", "train vae"}
    device = next(o for o in _commands(tree)["train cnn"].options if o.names == ("--device",))
    assert device.choices == ("auto", "cpu", "cuda", "mps")


# -- bash: the script is sourced in a shell where running fmtool or Python is detectable -----

def _no_python_path(tmp_path: Path) -> tuple[str, Path]:
    """A PATH whose fmtool/python would leave a marker: completion must never run them."""
    shims, marker = tmp_path / "shims", tmp_path / "python-was-started"
    shims.mkdir()
    for name in ("fmtool", "python", "python3"):
        (shims / name).write_text(f"#!/bin/sh\ntouch {marker}\n")
        (shims / name).chmod(0o755)
    return str(shims), marker


def _bash_complete(lines: list[str], tmp_path: Path, cwd: Path | None = None) -> list[list[str]]:
    """The sorted replies to each line (cursor at its end) of completions/fmtool.bash."""
    path, marker = _no_python_path(tmp_path)
    script = [f"source {shlex.quote(str(REPO / 'completions' / 'fmtool.bash'))}"]
    for line in lines:
        words = []
        for word in shlex.split(line) + ([""] if line.endswith(" ") else []):
            option, equals, value = word.partition("=")  # bash splits at COMP_WORDBREAKS' '='
            words += [option, "=", value] if equals and option.startswith("-") else [word]
        script += [f"COMP_WORDS=({' '.join(shlex.quote(w) for w in words)})",
                   f"COMP_CWORD={len(words) - 1}", "COMPREPLY=()", "_fmtool",
                   "printf '%s|' \"${COMPREPLY[@]}\"; echo"]
    bash = shutil.which("bash")
    out = subprocess.run([bash, "--norc", "--noprofile", "-c", "\n".join(script)],
                         capture_output=True, text=True, env={"PATH": path}, cwd=cwd or tmp_path, check=True)
    assert not marker.exists(), "tab completion started fmtool or Python"
    assert out.stderr == ""
    return [sorted(filter(None, line.split("|"))) for line in out.stdout.splitlines()]


def test_bash_completes_every_command_option_and_choice_without_python(tree, tmp_path: Path):
    commands = _commands(tree)
    cases: list[tuple[str, list[str]]] = []
    for command in commands.values():
        prefix = " ".join(("fmtool", *command.path)) + " "
        cases.append((prefix + "-", sorted(n for o in command.options
                                           for n in (*o.names, *o.negations))))
        if command.subcommands:
            cases.append((prefix, sorted(s.path[-1] for s in command.subcommands)))
        for option in command.options:
            if option.complete == "choice":
                cases.append((prefix + option.names[0] + " ", sorted(option.choices)))
    cases += [
        ("fmtool tr", ["train"]),
        ("fmtool train cnn --device=c", ["cpu", "cuda"]),  # bash splits --device=c at '='
        ("fmtool train cnn --name train --d", ["--data-dir", "--device", "--dropout"]),  # a value, not a command
        ("fmtool classify -k 3 --j", ["--json"]),
        ("fmtool eval --limit ", []),  # a number: nothing to offer, and no file names
    ]
    got = _bash_complete([line for line, _ in cases], tmp_path)
    for (line, expected), answer in zip(cases, got):
        assert answer == expected, line


def test_bash_completes_files_and_folders_where_commands_take_them(tmp_path: Path):
    work = tmp_path / "work"
    (work / "shelf").mkdir(parents=True)
    (work / "shoe photo.png").write_bytes(b"")
    got = _bash_complete(["fmtool classify sh", "fmtool reconstruct sh",
                          "fmtool train cnn --data-dir sh"], tmp_path, cwd=work)
    assert got[0] == ["shelf", "shoe photo.png"]
    assert got[1] == got[2] == ["shelf"]


# -- zsh and fish: driven through the real shells when installed -----------------------------

ZSH_CAPTURE = r"""
zmodload zsh/zpty
zpty z zsh -f -i
zpty -w z "PROMPT='' RPROMPT=''; fpath=(${(q)1} \$fpath); autoload -U compinit; compinit -u -D"
zpty -w z 'compadd() { if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then builtin compadd "$@"; return; fi; local -a h; builtin compadd -A h "$@"; (( $#h )) && print -r -l -- "@@"${^h[@]}; builtin compadd "$@"; }'
zpty -w z "zstyle ':completion:*' insert-tab false; comppostfuncs=(exit)"
zpty -w z "$2"$'\t'
local line
while zpty -r z line; do print -r -- $line; done
"""


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
@pytest.mark.parametrize("line, expected", [
    ("fmtool ", {"info", "eval", "classify", "project", "reconstruct", "fuse", "report", "export", "train"}),
    ("fmtool train ", {"cnn", "vae"}),
    ("fmtool train cnn --dev", {"--device"}),
    ("fmtool train cnn --device ", {"auto", "cpu", "cuda", "mps"}),
    ("fmtool classify -k 3 --j", {"--json"}),
    ("fmtool fuse --method ", {"lerp", "slerp"}),
])
def test_zsh_completes(line: str, expected: set[str], tmp_path: Path):
    capture = tmp_path / "capture.zsh"
    capture.write_text(ZSH_CAPTURE)
    out = subprocess.run(["zsh", "-f", str(capture), str(REPO / "completions"), line],
                         capture_output=True, text=True, timeout=30, cwd=tmp_path,
                         env={**os.environ, "HOME": str(tmp_path)})
    found = {m for m in re.findall(r"@@([^\s\r]+)", out.stdout) if "$" not in m}
    assert found == expected, out.stdout[-2000:]


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed")
def test_fish_completes(tmp_path: Path):
    (tmp_path / "shelf").mkdir()
    cases = {
        "fmtool ": {"info", "eval", "classify", "project", "reconstruct", "fuse", "report", "export", "train"},
        "fmtool train ": {"cnn", "vae"},
        "fmtool train cnn --dev": {"--device"},
        "fmtool train cnn --device ": {"auto", "cpu", "cuda", "mps"},
        "fmtool train cnn --name train --d": {"--data-dir", "--device", "--dropout"},
        "fmtool classify -k 3 --j": {"--json"},
        "fmtool reconstruct sh": {"shelf/"},
        "fmtool eval --limit ": set(),
    }
    script = [f"source {shlex.quote(str(REPO / 'completions' / 'fmtool.fish'))}"]
    for line in cases:
        script += [f"complete -C {shlex.quote(line)}", "echo '=='"]
    out = subprocess.run(["fish", "--no-config", "-c", "\n".join(script)], capture_output=True,
                         text=True, cwd=tmp_path, timeout=30, check=True)
    answers = out.stdout.split("==\n")[:-1]
    for (line, expected), answer in zip(cases.items(), answers):
        assert {row.split("\t")[0] for row in answer.splitlines()} == expected, line


def test_typers_own_completion_does_not_import_torch(tmp_path: Path):
    """`fmtool --install-completion` installs Typer's completion, which runs fmtool per Tab."""
    code = "import sys; sys.argv = ['fmtool']; from fmtool.cli.app import main; main()"
    env = {**os.environ, "_FMTOOL_COMPLETE": "complete_bash", "COMP_WORDS": "fmtool train cnn --de",
           "COMP_CWORD": "3", "PYTHONPROFILEIMPORTTIME": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=tmp_path)
    assert "--device" in out.stdout.split()
    imported = {line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines() if "|" in line}
    assert "typer" in imported and not imported & {"torch", "torchvision", "sklearn", "matplotlib"}


# -- the man page ---------------------------------------------------------------------------

def test_man_page_documents_every_command_option_and_environment_variable(tree):
    page = (REPO / "man" / "fmtool.1").read_text().replace("\\-", "-")
    for command in tree.walk():
        if not command.subcommands:
            assert f'.SS "{command.usage()}"' in page
        for option in command.options:
            for name in (*option.names, *option.negations):
                assert f"\\fB{name}\\fR" in page
    used = set()
    for source in (REPO / "fmtool").rglob("*.py"):
        used |= set(re.findall(r"\bFMTOOL_[A-Z_]+\b", source.read_text()))
    environment = page.split(".SH ENVIRONMENT")[1].split(".SH ")[0]
    assert used and all(f"\\fB{name}\\fR" in environment for name in used), used


def test_man_page_examples_use_real_commands_and_options(tree, page):
    commands = _commands(tree)
    examples = page.split(".SH EXAMPLES\n")[1].split("\n.SH ")[0]
    lines = [_unroff(line)[2:] for line in examples.splitlines() if line.startswith("\\fB$ ")]
    assert len(lines) >= 5
    for line in lines:
        words = shlex.split(line)
        words = words[:next((i for i, w in enumerate(words) if w in (">", "|")), len(words))]
        assert words[0] == "fmtool"
        path: list[str] = []
        for word in words[1:]:
            if not word.startswith("-") and " ".join([*path, word]) in commands:
                path.append(word)
        command = commands[" ".join(path)]
        names = {n for o in command.options for n in (*o.names, *o.negations)}
        unknown = [w for w in words if w.startswith("-") and w.split("=")[0] not in names]
        assert not command.subcommands and not unknown, line


def test_man_page_names_every_command_that_exits_1(page):
    """EXIT STATUS 1 once left out fuse: the list must be the commands whose code exits 1,
    found here in their source, independently of the generator."""
    import typer

    from fmtool.cli.app import app

    def leaves(group, path: tuple[str, ...]):
        for name, command in group.commands.items():
            if hasattr(command, "commands"):
                yield from leaves(command, (*path, name))
            else:
                yield " ".join((*path, name)), inspect.unwrap(command.callback)

    exiting = {name for name, function in leaves(typer.main.get_command(app), ())
               if re.search(r"\bExit\(\s*(code\s*=\s*)?1\s*\)", inspect.getsource(function))}
    assert "classify" in exiting  # the scan finds what it looks for
    listed = re.search(r"\(([^)]*)\)", _man_entries(page, "EXIT STATUS")["1"]).group(1)
    assert set(listed.split(", ")) == exiting


def test_man_page_says_which_epoch_best_pt_keeps(page, tiny_fashion: Path):
    """FILES once said the CNN's best.pt had the highest test accuracy, but the CNN selects on
    held-out training images: the words must name the metric each training task selects on."""
    import torch

    from fmtool.cnn.recipes import RECIPES
    from fmtool.cnn.task import CNNTask
    from fmtool.data.fashion import load_from_dir
    from fmtool.vae.task import VAETask

    metrics = {"val_acc": "validation accuracy", "test_acc": "test accuracy",
               "val_loss": "validation loss"}
    modes = {"max": "highest", "min": "lowest"}

    def selects(task) -> str:
        return f"{modes[task.best_mode]} {metrics[task.best_metric]}"

    data, cpu = load_from_dir(tiny_fashion), torch.device("cpu")
    default = CNNTask(data, RECIPES["cpu"], cpu, width=0.05)  # the default recipe on a CPU
    on_test = CNNTask(data, RECIPES["paper"], cpu, width=0.05)  # the report's protocol
    entry = _man_entries(page, "FILES")["last.pt, best.pt"]
    assert "CNN" in entry and "VAE" in entry and "--val-size 0" in entry, entry
    cnn, vae = entry.split("CNN", 1)[1].split("VAE", 1)
    by_default, without_validation = cnn.split("--val-size 0", 1)
    assert selects(default) in by_default and "test" not in by_default
    assert selects(on_test) in without_validation
    assert selects(VAETask) in vae


@pytest.mark.skipif(shutil.which("man") is None, reason="man is not installed")
def test_man_renders_without_warnings():
    out = subprocess.run(["man", "--warnings", "-l", str(REPO / "man" / "fmtool.1")],
                         capture_output=True, text=True, timeout=60,
                         env={**os.environ, "MANWIDTH": "100", "MANPAGER": "cat", "PAGER": "cat"})
    assert out.returncode == 0 and out.stderr == "", out.stderr
    assert "fmtool train cnn [OPTIONS]" in out.stdout and "--device auto|cpu|cuda|mps" in out.stdout
    assert "FMTOOL_HOME" in out.stdout and "EXAMPLES" in out.stdout
