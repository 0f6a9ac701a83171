"""Draw the report's three figures from its data: Pareto front, final model per layer, history.

A figure the data cannot support (no completed trial, no final model) is not
drawn, and its entry in :class:`Figures` is None.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from autoprune.report._data import ReportData
from autoprune.report._plots import history_plot, pareto_plot, sparsity_plot


@dataclass(frozen=True)
class Figures:
    """Paths of the drawn figures (None: not drawn)."""

    pareto: Path | None = None
    sparsity: Path | None = None
    history: Path | None = None


def draw_figures(data: ReportData, directory: Path) -> Figures:
    """Draw every figure ``data`` supports into ``directory``; returns their paths."""
    metric_label = f"validation {data.run.metric}"
    pareto = history = sparsity = None
    if data.pareto is not None:
        pareto = pareto_plot(
            data.pareto,
            directory / "pareto.png",
            cost_label=f"{data.run.cost_kind} / limit",
            metric_label=metric_label,
        )
    if data.final is not None:
        sparsity = sparsity_plot(data.final.final.layers, directory / "sparsity.png")
    if data.n_complete:
        history = history_plot(data.trials, directory / "history.png")
    return Figures(pareto=pareto, sparsity=sparsity, history=history)
