"""The layout is the architecture: each folder may import only the layers beneath it.

    cli  ->  api, report  ->  cnn, vae  ->  photo  ->  models, data, metrics, engine  ->  errors, choices

The rules are read from the source (every import, also those inside functions), so a module that
breaks one fails here even if no test ever runs it. `layer_violations` is the checker;
the last test shows it catching deliberate violations.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "fmtool"
SHARED = {"fmtool", "fmtool.errors", "fmtool.choices"}  # the package root, errors and choices
# What each layer may import from fmtool (besides SHARED and itself).
ALLOWED = {
    "engine": set(),
    "models": set(),
    "data": {"engine"},
    "metrics": {"engine"},
    "photo": {"engine", "data"},
    "cnn": {"engine", "models", "data", "metrics", "photo"},
    "vae": {"engine", "models", "data", "metrics", "photo"},
    "report": {"engine", "models", "data", "metrics", "photo", "cnn", "vae"},
    "api": {"engine", "models", "data", "metrics", "photo", "cnn", "vae"},
    "cli": {"engine", "models", "data", "metrics", "photo", "cnn", "vae", "report", "api"},
}
TERMINAL_LIBRARIES = {"typer", "click", "rich"}  # only cli/ talks to the terminal


def _imports(tree: ast.AST, module: str, package: Path) -> list[tuple[int, str]]:
    """(line, imported module) for every import in the file, relative ones resolved."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = module.split(".")[:-node.level]
                base = ".".join(parent + ([base] if base else []))
            if base == "fmtool":  # `from fmtool import x` names a module or a name in fmtool
                found += [(node.lineno, f"fmtool.{alias.name}"
                           if _is_module(package, alias.name) else "fmtool")
                          for alias in node.names]
            else:
                found.append((node.lineno, base))
    return found


def _is_module(package: Path, name: str) -> bool:
    return (package / name).is_dir() or (package / f"{name}.py").is_file()


def _prints(tree: ast.AST) -> list[int]:
    """Lines that write to the terminal directly: print(), sys.stdout/stderr.write()."""
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        if isinstance(node.func, ast.Name) and node.func.id == "print":
            lines.append(node.lineno)
        elif (isinstance(node.func, ast.Attribute) and node.func.attr == "write"
              and isinstance(node.func.value, ast.Attribute)
              and node.func.value.attr in ("stdout", "stderr")):
            lines.append(node.lineno)
    return lines


def _layer_of(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "fmtool" and parts[1] in ALLOWED else None


def layer_violations(package: Path) -> list[str]:
    """Every broken layer rule in the package at `package`, one line each."""
    problems = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package.parent).with_suffix("")
        module = ".".join(relative.parts)
        layer = _layer_of(module)
        if layer is None:
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        where = relative.as_posix() + ".py"
        for line, name in _imports(tree, module, package):
            top = name.split(".")[0]
            target = _layer_of(name)
            if layer == "models" and top not in ("torch", "__future__"):
                problems.append(f"{where}:{line}: models/ imports only torch, not {name}")
            elif layer != "cli" and top in TERMINAL_LIBRARIES:
                problems.append(f"{where}:{line}: {layer}/ must not import {name} (only cli/ "
                                "talks to the terminal)")
            elif top == "fmtool" and name not in SHARED and target not in (None, layer) \
                    and target not in ALLOWED[layer]:
                problems.append(f"{where}:{line}: {layer}/ must not import {name}")
            elif top == "fmtool" and target is None and name not in SHARED:
                problems.append(f"{where}:{line}: {name} is outside every layer")
        if layer != "cli":
            problems += [f"{where}:{line}: {layer}/ must not print; report through a Feedback"
                         for line in _prints(tree)]
    return problems


def test_every_module_keeps_the_layer_rules():
    assert layer_violations(PACKAGE) == []


def _module_imports(tree: ast.AST, package: Path) -> set[str]:
    """The package's modules a file imports; `from a.b import c` counts as a.b.c where c is a
    module. The package root is left out: it only re-exports names, lazily."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                inner = Path(*f"{node.module}.{alias.name}".split("."))
                is_module = (package.parent / inner).is_dir() or \
                    (package.parent / inner.with_suffix(".py")).is_file()
                found.add(f"{node.module}.{alias.name}" if is_module else node.module)
    return {name for name in found if name.startswith(f"{package.name}.")}


def import_cycles(package: Path) -> list[list[str]]:
    """Every cycle of imports between the package's modules (imports inside functions and under
    TYPE_CHECKING count too: a cycle is two modules that cannot be read one before the other)."""
    graph: dict[str, set[str]] = {}
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package.parent).with_suffix("")
        module = ".".join(relative.parts[:-1] if relative.name == "__init__" else relative.parts)
        graph[module] = _module_imports(ast.parse(path.read_text(), filename=str(path)),
                                        package) - {module}
    cycles, state = [], dict.fromkeys(graph, 0)  # 0 unseen, 1 on the path, 2 done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycles.append(path[path.index(target):] + [target])
            elif state.get(target) == 0:
                visit(target, path + [target])
        state[module] = 2

    for module in graph:
        if state[module] == 0:
            visit(module, [module])
    return cycles


def test_no_two_modules_import_each_other():
    assert import_cycles(PACKAGE) == []


def test_the_cycle_check_finds_a_cycle(tmp_path: Path):
    package = tmp_path / "fmtool"
    (package / "report").mkdir(parents=True)
    (package / "report" / "study.py").write_text("from fmtool.report import figures\n")
    (package / "report" / "figures.py").write_text("def f():\n    from fmtool.report.study import Study\n")
    assert import_cycles(package) == [["fmtool.report.figures", "fmtool.report.study",
                                       "fmtool.report.figures"]]


def test_the_rules_cover_every_folder_of_the_package():
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and any(p.glob("*.py"))}
    assert folders == set(ALLOWED)


VIOLATIONS = {
    "engine/knows_a_model.py": ("from fmtool.cnn.task import CNNTask\n",
                                "engine/ must not import fmtool.cnn.task"),
    "engine/prints.py": ("def f():\n    print('hello')\n", "engine/ must not print"),
    "data/writes_stderr.py": ("import sys\nsys.stderr.write('x')\n", "data/ must not print"),
    "metrics/draws_tables.py": ("def f():\n    from rich.table import Table\n",
                                "metrics/ must not import rich.table"),
    "data/asks_the_cli.py": ("from fmtool.cli import output\n",
                             "data/ must not import fmtool.cli"),
    "models/uses_numpy.py": ("import numpy\n", "models/ imports only torch, not numpy"),
    "engine/imports_vae_module.py": ("from fmtool import vae\n",
                                     "engine/ must not import fmtool.vae"),
    "cnn/knows_typer.py": ("import typer\n", "cnn/ must not import typer"),
    "vae/builds_the_report.py": ("from fmtool.report import study\n",
                                 "vae/ must not import fmtool.report"),
    "report/asks_the_cli.py": ("from fmtool.cli.output import TERMINAL\n",
                               "report/ must not import fmtool.cli.output"),
}


@pytest.mark.parametrize("file", sorted(VIOLATIONS))
def test_the_checker_catches_a_deliberate_violation(tmp_path: Path, file: str):
    source, expected = VIOLATIONS[file]
    package = tmp_path / "fmtool"
    for folder in ALLOWED:
        (package / folder).mkdir(parents=True)
    (package / file).write_text(source)
    found = layer_violations(package)
    assert len(found) == 1 and expected in found[0] and file in found[0], found
