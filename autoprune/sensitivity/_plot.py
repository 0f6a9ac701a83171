"""The sensitivity curves as a PNG: one line per unit, the dense model as a reference.

Example:
    >>> import tempfile
    >>> import pandas as pd
    >>> from autoprune.sensitivity import Sensitivity
    >>> t = pd.DataFrame({"layer": ["a", "a", "b", "b"], "sparsity": [0.5, 0.9] * 2,
    ...                   "metric": [0.9, 0.5, 0.9, 0.89], "loss": [0.0] * 4, "error": [""] * 4})
    >>> t["drop"] = 0.9 - t["metric"]
    >>> sens = Sensitivity(t, 0.9, 0.0, "l1", "unstructured", (0.5, 0.9), "accuracy", 0.0)
    >>> plot_sensitivity(sens, Path(tempfile.mkdtemp()) / "sensitivity.png").stat().st_size > 0
    True
"""

from __future__ import annotations

from pathlib import Path


def plot_sensitivity(sens, path: str | Path) -> Path:
    """Metric against amount for every unit; returns ``path``."""
    from autoprune._plotting import figure, legend_below, save

    unit_word = (
        "fraction of weights removed"
        if sens.granularity == "unstructured"
        else "fraction of channels removed"
    )
    plt, fig, ax = figure()
    for unit in sens.ranking()["layer"]:
        part = sens.table[sens.table["layer"] == unit].sort_values("sparsity")
        ax.plot(
            [0.0, *part["sparsity"]],
            [sens.dense_metric, *part["metric"]],
            marker="o",
            ms=3,
            label=unit,
        )
    ax.axhline(sens.dense_metric, color="grey", ls="--", lw=1, label="dense")
    ax.set_xlabel(f"{unit_word} (that layer alone)")
    ax.set_ylabel(f"validation {sens.metric_name}")
    ax.set_title(
        f"Sensitivity per {'layer' if sens.granularity == 'unstructured' else 'dependency group'} "
        f"({sens.granularity}, {sens.criterion})"
    )
    ax.grid(alpha=0.3)
    legend_below(fig, ax, ncols=4)
    return save(plt, fig, path)
