"""The study as two documents in its folder: index.html (static, no script, opens from the
folder without a server) and report.md, both linking the figures by relative names.

Every text that comes from data (class names, paths, recipe values) is escaped for the format
it goes into, and its control characters (ESC, the bidirectional overrides, ...) as on the
terminal (`engine.text.escape_controls`), so a name can neither hide nor reorder the text.
PDF figures cannot be shown inline by an <img>, so the HTML links them instead.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence
from urllib.parse import quote

from fmtool.engine.io import write_text
from fmtool.engine.text import escape_controls
from fmtool.report.tables import Table

STYLE = """body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto;
  padding: 0 1em; line-height: 1.45; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 0.3em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f3f3f3; }
figure { margin: 2.5em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #e5e5e5; }
figcaption, p.note { color: #444; max-width: 60em; }
p.missing { color: #8a2d00; }"""
NUMERIC = ' class="num"'


def _text(text: str) -> str:
    """Text safe inside HTML, its control characters shown as escapes."""
    return html.escape(escape_controls(text))


@dataclass
class Item:
    """One numbered figure or table of the study, as the documents show it."""

    label: str  # "Figure 1", "Table 2"
    title: str
    caption: str
    files: list[str] = field(default_factory=list)  # names in the folder: pictures, then data
    table: Table | None = None
    missing: str = ""  # why it was not drawn (then `files` is empty)

    @property
    def anchor(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.label.lower()).strip("-")


def _link(name: str) -> str:
    return quote(name)


def _is_picture(name: str) -> bool:
    return name.rsplit(".", 1)[-1] in ("png", "svg")


def _html_table(table: Table) -> str:
    head = "".join(f"<th>{_text(cell)}</th>" for cell in table.header)
    body = []
    for row in table.rows:
        cells = "".join(f"<td{NUMERIC if i in table.numeric else ''}>{_text(cell)}</td>"
                        for i, cell in enumerate(row))
        body.append(f"<tr>{cells}</tr>")
    parts = [f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"]
    if table.note:
        parts.append(f'<p class="note">{_text(table.note)}</p>')
    return "\n".join(parts)


def _html_item(item: Item) -> str:
    parts = [f'<figure id="{item.anchor}">']
    for name in item.files:
        if _is_picture(name):
            parts.append(f'<a href="{_link(name)}"><img src="{_link(name)}" '
                         f'alt="{_text(item.label)}: {_text(item.title)}"></a>')
    if item.table is not None:
        parts.append(_html_table(item.table))
    caption = f"<b>{_text(item.label)}. {_text(item.title)}.</b> {_text(item.caption)}"
    others = [name for name in item.files if not _is_picture(name)]
    if others:
        caption += " Files: " + ", ".join(f'<a href="{_link(n)}">{_text(n)}</a>'
                                          for n in others) + "."
    parts.append(f"<figcaption>{caption}</figcaption>")
    if item.missing:
        parts.append(f'<p class="missing">Not drawn: {_text(item.missing)}</p>')
    parts.append("</figure>")
    return "\n".join(parts)


def to_html(title: str, intro: Sequence[str], tables: Sequence[Table],
            items: Sequence[Item]) -> str:
    contents = "".join(f'<li><a href="#{item.anchor}">{_text(item.label)}: '
                       f"{_text(item.title)}</a></li>" for item in items)
    sections = "\n".join(f"<h3>{_text(t.title)}</h3>\n{_html_table(t)}" for t in tables)
    paragraphs = "\n".join(f"<p>{_text(text)}</p>" for text in intro)
    body = "\n".join(_html_item(item) for item in items)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{_text(title)}</title>\n<style>\n{STYLE}\n</style>\n</head>\n<body>\n"
            f"<h1>{_text(title)}</h1>\n{paragraphs}\n<ul>{contents}</ul>\n"
            f"<h2>Numbers</h2>\n{sections}\n<h2>Figures and tables</h2>\n{body}\n"
            "</body>\n</html>\n")


def _md(text: str) -> str:
    """Text safe inside a Markdown paragraph or table cell."""
    out = escape_controls(text.replace("\n", " ")).replace("\\", "\\\\").replace("|", "\\|")
    for char in "*_`[]<>#":
        out = out.replace(char, "\\" + char)
    return out


def _md_link(name: str) -> str:
    return f"[{_md(name)}](<{name}>)"


def _md_table(table: Table) -> str:
    lines = ["| " + " | ".join(_md(c) for c in table.header) + " |",
             "| " + " | ".join("---:" if i in table.numeric else "---"
                               for i in range(len(table.header))) + " |"]
    lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in table.rows]
    if table.note:
        lines += ["", _md(table.note)]
    return "\n".join(lines)


def to_markdown(title: str, intro: Sequence[str], tables: Sequence[Table],
                items: Sequence[Item]) -> str:
    lines = [f"# {_md(title)}", "", *[line for text in intro for line in (_md(text), "")],
             "## Numbers", ""]
    for table in tables:
        lines += [f"### {_md(table.title)}", "", _md_table(table), ""]
    lines += ["## Figures and tables", ""]
    for item in items:
        lines += [f"### {_md(item.label)}: {_md(item.title)}", ""]
        lines += [f"![{_md(item.label)}](<{name}>)" for name in item.files if _is_picture(name)]
        if item.table is not None:
            lines += ["", _md_table(item.table)]
        others = [name for name in item.files if not _is_picture(name)]
        files = f" Files: {', '.join(_md_link(n) for n in others)}." if others else ""
        lines += ["", f"**{_md(item.label)}.** {_md(item.caption)}{files}", ""]
        if item.missing:
            lines += [f"Not drawn: {_md(item.missing)}", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def write_documents(html_path: Path, markdown_path: Path, title: str, intro: Sequence[str],
                    tables: Sequence[Table], items: Sequence[Item]) -> list[Path]:
    """The HTML page and the Markdown document (the study names them: index.html, report.md)."""
    return [write_text(html_path, to_html(title, intro, tables, items)),
            write_text(markdown_path, to_markdown(title, intro, tables, items))]
