"""Shared helpers of the benchmark suites: versions and markdown tables.

Example:
    >>> print(markdown_table([{"a": 1, "b": 0.5}]))
    | a | b |
    |---|---|
    | 1 | 0.5000 |
"""

from __future__ import annotations

import platform
from collections.abc import Sequence

import torch

from autoprune._table import format_value


def markdown_table(rows: Sequence[dict], columns: Sequence[str] | None = None) -> str:
    """A GitHub markdown table of ``rows``."""
    if not rows:
        return "(no rows)"
    columns = list(columns or rows[0].keys())
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += [
        "| " + " | ".join(format_value(row.get(c, "")) for c in columns) + " |" for row in rows
    ]
    return "\n".join(lines)


def versions() -> dict[str, str]:
    """Versions of everything a benchmark result depends on."""
    import optuna
    import torch_pruning

    import autoprune

    return {
        "autoprune": autoprune.__version__,
        "torch": torch.__version__,
        "torch-pruning": getattr(torch_pruning, "__version__", "?"),
        "optuna": optuna.__version__,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads available",
    }
