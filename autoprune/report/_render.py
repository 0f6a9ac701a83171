"""Render report blocks to markdown and to a self-contained HTML page.

A report is a list of blocks (headings, paragraphs, tables, images) built from
the run's files; both renderers walk the same list, so the markdown and the
HTML always say the same thing. HTML embeds every image as base64.

Example:
    >>> blocks = [Heading("Title", 1), Table([{"a": 1}]), Text("done")]
    >>> print(to_markdown(blocks, Path(".")))
    # Title
    <BLANKLINE>
    | a |
    |---|
    | 1 |
    <BLANKLINE>
    done
    <BLANKLINE>
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path

from autoprune._table import format_value


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Text:
    text: str


@dataclass
class Table:
    rows: list[dict]
    columns: list[str] | None = None


@dataclass
class Image:
    path: Path
    caption: str = ""


def _columns(table: Table) -> list[str]:
    return list(table.columns or (table.rows[0].keys() if table.rows else []))


def to_markdown(blocks, base: Path) -> str:
    """Markdown; images are linked relative to ``base`` (the report's directory)."""
    out = []
    for block in blocks:
        if isinstance(block, Heading):
            out.append("#" * block.level + " " + block.text)
        elif isinstance(block, Text):
            out.append(block.text)
        elif isinstance(block, Table):
            if not block.rows:
                out.append("(none)")
                continue
            cols = _columns(block)
            lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
            lines += [
                "| " + " | ".join(format_value(r.get(c, "")) for c in cols) + " |"
                for r in block.rows
            ]
            out.append("\n".join(lines))
        elif isinstance(block, Image):
            rel = (
                Path(block.path).resolve().relative_to(base.resolve())
                if _inside(block.path, base)
                else block.path
            )
            out.append(f"![{block.caption}]({Path(rel).as_posix()})")
    return "\n\n".join(out) + "\n"


def _inside(path: Path, base: Path) -> bool:
    try:
        Path(path).resolve().relative_to(base.resolve())
        return True
    except ValueError:
        return False


CSS = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; max-width: 1000px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
table { border-collapse: collapse; margin: 0.6em 0 1.2em; font-size: 0.88em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; border: 1px solid #eee; } figure { margin: 1em 0; } figcaption { color: #555; font-size: 0.9em; }
code { background: #f5f5f5; padding: 0 3px; }
"""


def _inline_html(text: str) -> str:
    """Escaped text with its `code spans` as <code> (an unpaired backtick spans to the end)."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def to_html(blocks, title: str) -> str:
    """A standalone HTML page; images are embedded as base64 PNG data."""
    out = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        f"<style>{CSS}</style></head><body>",
    ]
    for block in blocks:
        if isinstance(block, Heading):
            out.append(f"<h{block.level}>{html.escape(block.text)}</h{block.level}>")
        elif isinstance(block, Text):
            out.append(f"<p>{_inline_html(block.text)}</p>")
        elif isinstance(block, Table):
            if not block.rows:
                out.append("<p>(none)</p>")
                continue
            cols = _columns(block)
            head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
            body = "".join(
                "<tr>"
                + "".join(f"<td>{_inline_html(format_value(r.get(c, '')))}</td>" for c in cols)
                + "</tr>"
                for r in block.rows
            )
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif isinstance(block, Image):
            data = base64.b64encode(Path(block.path).read_bytes()).decode("ascii")
            out.append(
                f"<figure><img alt='{html.escape(block.caption)}' src='data:image/png;base64,{data}'>"
                f"<figcaption>{html.escape(block.caption)}</figcaption></figure>"
            )
    out.append("</body></html>")
    return "\n".join(out) + "\n"
