"""The report: Pareto front, pick, final fine-tune, test numbers, markdown and HTML.

Example:
    >>> from autoprune.report import RULES
    >>> RULES
    ('best', 'smallest', 'knee')
"""

from autoprune.report._build import build_report, collect_blocks
from autoprune.report._finalize import export_tables, finalize, read_final
from autoprune.report._front import classify, seed_rows
from autoprune.report._pick import RULES, choose, shortlist

__all__ = [
    "RULES",
    "build_report",
    "choose",
    "classify",
    "collect_blocks",
    "export_tables",
    "finalize",
    "read_final",
    "seed_rows",
    "shortlist",
]
