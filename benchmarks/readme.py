"""The README's benchmark figures, generated from ``results/`` and checked against it.

The README quotes each headline table between two markers::

    <!-- results: results/benchmarks/quick/fashion-cnn.csv regime=recovery -->
    | budget | ... |
    <!-- /results -->

:func:`render_blocks` rebuilds every marked table from the committed CSV
(``python -m benchmarks readme`` writes them into README.md);
:func:`stale_blocks` lists the blocks whose text differs from what the CSV
gives, and :func:`unsourced_figures` the figures of the README's prose
(numbers with three or more decimals) that no results file their section links
to contains. A test runs both on the committed README, so no figure is copied by
hand.

Example:
    >>> BLOCK.search("<!-- results: a.csv regime=one-shot -->\\n|x|\\n<!-- /results -->").group("path")
    'a.csv'
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from benchmarks._tables import headline_markdown

BLOCK = re.compile(
    r"<!-- results: (?P<path>\S+) regime=(?P<regime>[\w-]+) -->\n(?P<body>.*?)<!-- /results -->",
    re.DOTALL,
)
FIGURE = re.compile(r"(?<![\d.])\d+\.\d{3,}(?![\d.])")
CODE = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)
LINK = re.compile(r"\((results/[^)\s]+\.(?:md|csv|txt))\)")


def render_block(root: Path, path: str, regime: str) -> str:
    """The headline table of ``regime`` from the CSV at ``path`` (relative to ``root``)."""
    return headline_markdown(pd.read_csv(Path(root) / path), regime)


def render_blocks(text: str, root: Path) -> str:
    """``text`` with every marked block rebuilt from its CSV."""

    def fill(match: re.Match) -> str:
        body = render_block(root, match["path"], match["regime"])
        return (
            f"<!-- results: {match['path']} regime={match['regime']} -->\n{body}\n<!-- /results -->"
        )

    return BLOCK.sub(fill, text)


def stale_blocks(text: str, root: Path) -> list[str]:
    """The marked blocks whose tables differ from their CSV's (path and regime of each)."""
    return [
        f"{m['path']} ({m['regime']})"
        for m in BLOCK.finditer(text)
        if m["body"].strip() != render_block(root, m["path"], m["regime"]).strip()
    ]


def unsourced_figures(text: str, root: Path) -> list[str]:
    """Figures of the README's prose found in none of the results files their section links to.

    Each ``## `` section is checked against the files it links to (code, in
    backticks or fenced, is not prose); the marked tables are left to
    :func:`stale_blocks`.
    """
    missing = set()
    for section in re.split(r"(?m)^(?=## )", text):
        sources = {m for m in LINK.findall(section)} | {m["path"] for m in BLOCK.finditer(section)}
        corpus = "\n".join(
            (Path(root) / s).read_text() for s in sorted(sources) if (Path(root) / s).is_file()
        )
        prose = CODE.sub("", BLOCK.sub("", section))
        missing |= {f for f in FIGURE.findall(prose) if f not in corpus}
    return sorted(missing)


def update_readme(readme: Path) -> bool:
    """Rewrite the marked blocks of ``readme`` from their CSVs; True when something changed."""
    readme = Path(readme)
    text = readme.read_text()
    updated = render_blocks(text, readme.parent)
    if updated != text:
        readme.write_text(updated)
    return updated != text
