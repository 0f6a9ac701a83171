"""Build ``report.md`` and ``report.html`` of a run directory from its files alone.

Three steps, each testable alone: :func:`~autoprune.report.collect_report_data`
computes every number from the run's files (``run.json``, ``trials.csv``,
``front.csv``, ``sensitivity/``, ``final/final.json``); :func:`draw_figures`
draws the figures from that data; :func:`report_blocks` writes the prose and
tables, which both renderers walk. A run with no finished trial, no feasible
trial or no final model yet is reported as far as it goes, with what is missing
said plainly.

Example:
    >>> import tempfile
    >>> from autoprune.errors import RunError
    >>> try:
    ...     build_report(tempfile.mkdtemp())
    ... except RunError as exc:
    ...     print("no run.json" in str(exc))
    True
"""

from __future__ import annotations

from pathlib import Path

from autoprune._io import remove_stale_temporaries, write_text
from autoprune.report._data import ReportData, collect_report_data
from autoprune.report._figures import Figures, draw_figures
from autoprune.report._prose import final_blocks, header_blocks, missing_text, title
from autoprune.report._prose_search import search_blocks
from autoprune.report._render import to_html, to_markdown


def report_blocks(data: ReportData, figures: Figures) -> list:
    """The report, top to bottom, as blocks for :func:`to_markdown` and :func:`to_html`."""
    return [*header_blocks(data), *final_blocks(data), *search_blocks(data, figures)]


def build_report(run_dir: str | Path) -> dict:
    """Write ``report.md``, ``report.html`` and ``figures/`` in ``run_dir``.

    Returns the paths (``markdown``, ``html``) and ``missing``: what the run lacks, in words.
    """
    run_dir = Path(run_dir)
    data = collect_report_data(run_dir)
    figures = draw_figures(data, run_dir / "figures")
    blocks = report_blocks(data, figures)
    for directory in (run_dir, run_dir / "figures", run_dir / "final"):
        if directory.is_dir():  # what killed writers left behind
            remove_stale_temporaries(directory)
    md, page = run_dir / "report.md", run_dir / "report.html"
    write_text(md, to_markdown(blocks, run_dir))
    write_text(page, to_html(blocks, title(data)))
    return {"markdown": md, "html": page, "missing": missing_text(data)}
