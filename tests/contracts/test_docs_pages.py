"""The README and the pages under docs/: one page per subject, links that lead somewhere, every
figure of a bundled model quoted from its card (and checked against it), and every console
example either run here or marked as illustrative.

A quote of a card is a link whose title names the model and the card's key:
`[94.51%](models.md#the-cnn "card cnn metrics.test_accuracy")`; `*200` after the key multiplies
(a share of 200 photos as a count). Its text must start with the figure, which shows the
value exactly (a `%` is the value times 100), a PSNR in `dB` to 2 decimals or more.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fmtool.cli.app import app
from tests.helpers.paths import REPO
from tools.card_quotes import FIGURE, QUOTE, card_value, cards, documents, refreshed

DOCS = REPO / "docs"
README = REPO / "README.md"
PAGES = ["commands", "recipes", "models", "photos", "reproduction", "speed", "json", "python-api",
         "development"]
ILLUSTRATIVE = "<!-- illustrative -->"
RUN_HERE = "<!-- run by tests/contracts/test_docs_pages.py -->"
SET_UP = [
    "python3 -m venv .venv && . .venv/bin/activate && pip install -e . && fmtool report --out study",
    "python3 -m venv .venv && . .venv/bin/activate && pip install -e '.[test,export]' "
    "&& python -m pytest -q",
]
runner = CliRunner()


def quote_errors(text: str, value: float, scale: int) -> str | None:
    """Why `text` does not show `value` (times `scale`), or None when it does. A share or a count
    is shown exactly (94.51% for 0.9451, never 94.5%); a PSNR in dB to 2 decimals or more, as
    fmtool prints it."""
    match = FIGURE.match(text)
    if not match:
        return f"{text!r} does not start with a figure"
    shown, unit = match.group(1), (match.group(2) or "").strip()
    if "," in shown and not re.fullmatch(r"\d{1,3}(,\d{3})+(\.\d+)?", shown):
        return f"{text!r}: {shown} is not grouped in thousands"
    expected = value * scale * (100 if unit == "%" else 1)
    if unit == "dB":
        decimals = len(shown.split(".")[1]) if "." in shown else 0
        if decimals < 2 or f"{expected:.{decimals}f}" != shown:
            return f"{text!r} shows {shown}, the card gives {expected}"
        return None
    if abs(float(shown.replace(",", "")) - expected) > 1e-9 * max(1.0, abs(expected)):
        return f"{text!r} shows {shown}, the card gives {expected:.10g}"
    return None


def console_blocks(path: Path) -> list[tuple[str, list[str]]]:
    """Each ```console block of a page: the line before it, and its lines."""
    lines, blocks = path.read_text().splitlines(), []
    for index, line in enumerate(lines):
        if line == "```console":
            end = lines.index("```", index + 1)
            before = next((x for x in reversed(lines[:index]) if x.strip()), "")
            blocks.append((before, lines[index + 1:end]))
    return blocks


def anchors(path: Path) -> set[str]:
    """GitHub's anchors for a page's headings."""
    found = set()
    for heading in re.findall(r"^#+ (.*)$", path.read_text(), flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower().replace("`", "")).replace(" ", "-")
        found.add(slug)
    return found


def test_the_readme_is_one_short_page_with_both_set_up_commands_and_the_headline():
    text = README.read_text()
    assert len(text.splitlines()) <= 250
    first_screen = "\n".join(text.splitlines()[:50])
    for command in SET_UP:
        assert f"```bash\n{command}\n```" in first_screen, command
    assert "## How well" in first_screen and "94.17%" in first_screen and "10,048" in first_screen
    assert "## Set up" in first_screen


def test_there_is_one_page_per_subject_and_every_link_leads_somewhere():
    assert {p.stem for p in DOCS.glob("*.md")} == set(PAGES)
    for page in documents():
        for target in re.findall(r"\]\(([^) \"]+)", page.read_text()):
            if re.match(r"https?://|mailto:", target):
                continue
            file, _, anchor = target.partition("#")
            destination = (page.parent / file).resolve() if file else page
            assert destination.exists(), f"{page.name}: {target} leads nowhere"
            if anchor and destination.suffix == ".md":
                assert anchor in anchors(destination), f"{page.name}: no heading for {target}"


@pytest.mark.parametrize("page", ["speed.md", "recipes.md"])
def test_the_cpu_speedrun_has_its_place(page: str):
    section = (DOCS / page).read_text().split("\n## The CPU speedrun\n", 1)[1]
    assert "`python benchmarks/speedrun.py`" in section.split("\n## ", 1)[0]


def test_every_quote_of_a_card_shows_the_card_figure():
    by_kind, quotes = cards(), []
    for page in documents():
        for text, _, kind, key, scale in QUOTE.findall(page.read_text()):
            value = card_value(by_kind[kind], key)
            error = quote_errors(text, value, int(scale or 1))
            assert error is None, f"{page.name}, {kind} {key}: {error}"
            quotes.append((page.name, kind, key))
    quoted = {(kind, key) for _, kind, key in quotes}
    for figure in [("cnn", "metrics.test_accuracy"), ("cnn", "metrics.val_accuracy"),
                   ("cnn", "metrics.photo_accuracy"), ("vae", "metrics.psnr"), ("vae", "metrics.ssim")]:
        assert figure in quoted, f"models.md does not quote {figure}"
    assert ("README.md", "cnn", "metrics.test_accuracy") in quotes


def test_the_quote_check_can_fail():
    assert quote_errors("94.51%", 0.9451, 1) is None and quote_errors("65%", 0.65, 1) is None
    assert quote_errors("94.5%", 0.9451, 1) and quote_errors("94.510%", 0.9451, 1) is None
    assert quote_errors("0.642", 0.6424, 1) and quote_errors("9,45,1", 9451, 1)
    assert quote_errors("139 of the 200 photos", 0.695, 200) is None
    assert quote_errors("140 of the 200 photos", 0.695, 200)
    assert quote_errors("9,451", 9451, 1) is None and quote_errors("9451", 9451, 1) is None
    assert quote_errors("21.26 dB", 21.2584, 1) is None and quote_errors("21.25 dB", 21.2584, 1)
    assert quote_errors("21.3 dB", 21.2584, 1)
    assert quote_errors("about", 1.0, 1)


def test_tools_card_quotes_rewrites_a_stale_quote_as_the_check_wants_it():
    card = {"cnn": {"metrics": {"test_accuracy": 0.9476, "photo_accuracy": 0.7, "test_correct": 9476}},
            "vae": {"metrics": {"psnr": 22.71349, "ssim": 0.70312}}}
    stale = ('[94.51%](m.md "card cnn metrics.test_accuracy") '
             '[139 of the 200 photos](m.md "card cnn metrics.photo_accuracy *200") '
             '[9,451](m.md "card cnn metrics.test_correct") [21.26 dB](m.md "card vae metrics.psnr") '
             '([21.2584 dB](m.md "card vae metrics.psnr")) [0.6424](m.md "card vae metrics.ssim")')
    text, changes = refreshed(stale, card)
    assert len(changes) == 6
    assert [label for label, *_ in QUOTE.findall(text)] == [
        "94.76%", "140 of the 200 photos", "9,476", "22.71 dB", "22.7135 dB", "0.70312"]
    for label, _, kind, key, scale in QUOTE.findall(text):
        assert quote_errors(label, card_value(card[kind], key), int(scale or 1)) is None
    assert refreshed(text, card) == (text, [])


def test_the_json_page_gives_the_card_figures_of_fmtool_info():
    text = (DOCS / "json.md").read_text()
    block = text.split("`fmtool info --json`:\n```json\n", 1)[1].split("\n```", 1)[0]
    for kind, shown in json.loads(block)["bundled"].items():
        metrics = cards()[kind]["metrics"]
        for key, value in shown.items():
            if key in metrics:
                assert value == metrics[key], f"json.md: {kind} {key}"


def test_every_console_example_is_run_here_or_marked_illustrative():
    run_here = []
    for page in documents():
        for before, lines in console_blocks(page):
            assert before in (ILLUSTRATIVE, RUN_HERE), (
                f"{page.name}: the console block starting {lines[0]!r} is neither run by a test "
                f"nor marked {ILLUSTRATIVE}")
            if before == RUN_HERE:
                run_here.append(lines)
    assert run_here, "no console example is run by a test"


def examples_run_here() -> list[list[str]]:
    return [lines for page in documents() for before, lines in console_blocks(page)
            if before == RUN_HERE]


def matches(shown: str, real: str) -> bool:
    """A shown line matches the real one, "..." standing for any text."""
    pattern = ".*".join(re.escape(part) for part in shown.split("..."))
    return re.fullmatch(pattern, real) is not None


@pytest.mark.parametrize("block", examples_run_here(), ids=lambda lines: lines[0])
def test_a_console_example_prints_what_the_page_shows(block: list[str], tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch):
    """Run in an empty folder with no run of any kind, as right after install."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FMTOOL_HOME", str(tmp_path / "home"))
    commands: list[tuple[str, list[str]]] = []
    for line in block:
        if line.startswith("$ "):
            commands.append((line[2:], []))
        else:
            commands[-1][1].append(line)
    for command, shown in commands:
        words = shlex.split(command)
        assert words[0] == "fmtool"
        result = runner.invoke(app, words[1:])
        assert result.exit_code == 0, result.output
        real = result.stderr.splitlines() + result.stdout.splitlines()
        assert len(real) == len(shown) and all(map(matches, shown, real)), (command, real)
