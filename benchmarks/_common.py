"""Shared helpers of the benchmark suites: versions and markdown tables.

Example:
    >>> print(markdown_table([{"a": 1, "b": 0.5}]))
    | a | b |
    |---|---|
    | 1 | 0.5000 |
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import subprocess
from collections.abc import Sequence
from pathlib import Path

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
    for dist in (
        "autoprune",
        "torch",
        "torch-pruning",
        "nvidia-modelopt",
        "optuna",
        "scikit-learn",
        "numpy",
    ):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "?"
    out["python"] = platform.python_version()
    out["machine"] = f"{platform.machine()}, {os.cpu_count()} CPUs"
    return out


@functools.lru_cache(maxsize=1)
def code_commit() -> str:
    """The commit the code runs at, ``+dirty`` when the package or the benchmarks differ from it.

    ``$AUTOPRUNE_BENCH_COMMIT`` when set (a run from an exported tree, e.g.
    ``git archive``); ``unknown`` outside a git checkout.
    """
    if os.environ.get("AUTOPRUNE_BENCH_COMMIT"):
        return os.environ["AUTOPRUNE_BENCH_COMMIT"]
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "autoprune", "benchmarks"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head[:12] + ("+dirty" if dirty else "")
