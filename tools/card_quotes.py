"""Brings every quote of a bundled model's card in README.md and docs/ up to date with the card.

    python -m tools.card_quotes          # rewrite the quotes whose figure moved, list them
    python -m tools.card_quotes --check  # list them only; exit 1 if any

A quote is a link whose title names the model and the card's key,
`[94.51%](models.md#the-cnn "card cnn metrics.test_accuracy")`, `*200` after the key multiplying
(a share of 200 photos as a count). Its text starts with the figure: a share or a count exactly
(94.51% for 0.9451, never 94.5%), a PSNR in dB with as many decimals as the quote had (at least
2), thousands grouped where the quote grouped them. tests/contracts/test_docs_pages.py checks
every quote with the same rules; this is what to run after `tools.bundle` ships a new model.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
QUOTE = re.compile(r'\[([^\]]+)\]\(([^ )]*) "card (cnn|vae) ([^" ]+)(?: \*(\d+))?"\)')
FIGURE = re.compile(r"(\d[\d,]*(?:\.\d+)?)( ?%| dB)?")


def documents() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def cards() -> dict[str, dict[str, Any]]:
    from fmtool.engine.bundled import bundled_checkpoint
    from fmtool.engine.checkpoint import load_checkpoint

    return {kind: load_checkpoint(bundled_checkpoint(kind), expect_kind=kind).meta["card"]
            for kind in ("cnn", "vae")}


def card_value(card: dict[str, Any], key: str) -> float:
    value: Any = card
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            raise KeyError(f"the card has no {key!r}")
        value = value[part]
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise KeyError(f"the card's {key!r} is no figure")
    return float(value)


def figure_text(value: float, unit: str, old: str) -> str:
    """`value` written as the quote `old` (its figure) wrote its own."""
    if unit == "dB":
        decimals = max(2, len(old.split(".")[1]) if "." in old else 0)
        return f"{value:.{decimals}f}"
    exact = f"{round(value, 9):.10g}"
    if "," in old and float(exact).is_integer():
        return f"{int(float(exact)):,}"
    return exact


def refreshed(text: str, card_of: dict[str, dict[str, Any]]) -> tuple[str, list[str]]:
    """`text` with each quote showing its card's figure, and a line for each quote changed."""
    changes: list[str] = []

    def update(match: re.Match[str]) -> str:
        label, target, kind, key, scale = match.groups()
        figure = FIGURE.match(label)
        if figure is None:
            return match.group(0)
        shown, unit = figure.group(1), (figure.group(2) or "").strip()
        value = card_value(card_of[kind], key) * int(scale or 1) * (100 if unit == "%" else 1)
        new = figure_text(value, unit, shown)
        if new == shown:
            return match.group(0)
        changes.append(f"{kind} {key}: {shown} -> {new}")
        return match.group(0).replace(label, new + label[figure.end(1):], 1)

    return QUOTE.sub(update, text), changes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="list the stale quotes only")
    args = parser.parse_args()
    card_of, stale = cards(), 0
    for page in documents():
        text, changes = refreshed(page.read_text(), card_of)
        for change in changes:
            print(f"{page.relative_to(REPO)}: {change}")
        stale += len(changes)
        if changes and not args.check:
            page.write_text(text)
    sys.exit(1 if args.check and stale else 0)


if __name__ == "__main__":
    main()
