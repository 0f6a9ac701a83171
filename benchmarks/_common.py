"""Shared helpers of the benchmark suites: versions and markdown tables.

Example:
    >>> print(markdown_table([{"a": 1, "b": 0.5}]))
    | a | b |
    |---|---|
    | 1 | 0.5000 |
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
from collections.abc import Sequence

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
    """Versions of every compared library (as installed), the interpreter and the machine."""
    out = {}
    for dist in ("autoprune", "torch", "torch-pruning", "optuna", "scikit-learn", "numpy"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "?"
    out["python"] = platform.python_version()
    out["machine"] = f"{platform.machine()}, {os.cpu_count()} CPUs"
    return out
