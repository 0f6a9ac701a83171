"""Shared helpers of the benchmark suites: side-by-side latency, versions, markdown.

Example:
    >>> print(markdown_table([{"a": 1, "b": 0.5}]))
    | a | b |
    |---|---|
    | 1 | 0.5000 |
"""

from __future__ import annotations

import platform
import statistics
from collections.abc import Sequence

import torch
from torch import nn

from autoprune._table import format_value
from autoprune.introspect import measure_latency


def markdown_table(rows: Sequence[dict], columns: Sequence[str] | None = None) -> str:
    """A GitHub markdown table of ``rows``."""
    if not rows:
        return "(no rows)"
    columns = list(columns or rows[0].keys())
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(format_value(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def side_by_side_latency(
    models: dict[str, nn.Module],
    example_input: torch.Tensor,
    *,
    rounds: int = 5,
    batch_size: int = 64,
    threads: int = 1,
    repeats: int = 30,
) -> dict[str, dict]:
    """Median latency of each model over ``rounds`` interleaved measurements, and its spread.

    Interleaving (A, B, A, B, ...) exposes every model to the same machine noise,
    so ratios between them are meaningful on a shared machine.
    """
    medians: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            stats = measure_latency(model, example_input, batch_size=batch_size, threads=threads, repeats=repeats, warmup=3)
            medians[name].append(stats.median_ms)
    return {
        name: {
            "median_ms": statistics.median(values),
            "min_ms": min(values),
            "max_ms": max(values),
            "rounds": rounds,
            "batch_size": batch_size,
            "threads": threads,
        }
        for name, values in medians.items()
    }


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
