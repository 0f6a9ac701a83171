"""The report's figures as PNG files: Pareto front, per-layer sparsity, optimisation history.

Each ``*_plot`` function takes data the report already computed
(:mod:`autoprune.report._data`) and a path; its ``*_figure`` twin returns the
figure unsaved. The axes take in every point drawn, with a margin, and the
legend sits under the plot, never on the data.

Example:
    >>> import tempfile, pathlib
    >>> layers = [{"layer": "fc1", "sparsity": 0.5, "channel_ratio": 0.0},
    ...           {"layer": "fc2", "sparsity": 0.2, "channel_ratio": 0.1}]
    >>> sparsity_plot(layers, pathlib.Path(tempfile.mkdtemp()) / "sparsity.png").name
    'sparsity.png'
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from autoprune._plotting import figure, legend_below, save
from autoprune.report._data import ParetoData

MARGIN = 0.05  # of the data range, around every point drawn

STYLE = {
    "front": dict(color="tab:red", marker="o", s=42, zorder=4, label="Pareto front"),
    "dominated": dict(
        color="tab:blue", marker="o", s=18, alpha=0.55, zorder=3, label="recovered, dominated"
    ),
    "one-shot": dict(
        color="tab:gray",
        marker=".",
        s=22,
        alpha=0.6,
        zorder=2,
        label="one-shot (pruned, not trained back)",
    ),
    "infeasible": dict(color="black", marker="x", s=22, alpha=0.5, zorder=2, label="over budget"),
}


def _draw_dense(ax, pareto: ParetoData, shown: pd.Series) -> None:
    """The dense model: a point, or a reference line when it lies far right of the trials."""
    dense_cost, dense_metric = pareto.dense_cost, pareto.dense_metric
    if len(shown) and dense_cost > 1.5 * max(1.0, float(shown.max())):
        ax.axhline(
            dense_metric,
            color="goldenrod",
            ls="--",
            lw=1.2,
            label=f"dense model (cost {dense_cost:.1f} x limit)",
        )
        return
    ax.scatter(
        [dense_cost],
        [dense_metric],
        marker="*",
        s=160,
        color="gold",
        edgecolor="black",
        zorder=5,
        label="dense model",
    )


def _draw_seeds(ax, seeds: pd.DataFrame) -> None:
    """The seed policies, each marked with its heuristic's initial and its granularity's."""
    ax.scatter(
        seeds["cost"],
        seeds["val_metric"],
        marker="s",
        s=60,
        facecolor="none",
        edgecolor="tab:purple",
        lw=1.3,
        zorder=5,
        label="seed policies (the heuristic's initial: U uniform, L lamp, G global, ...)",
    )
    for row in seeds.itertuples():
        name, _, granularity = str(row.seed).partition(":")
        ax.annotate(
            f"{name[0].upper()}{granularity[:1]}",
            (row.cost, row.val_metric),
            fontsize=7,
            color="tab:purple",
            xytext=(5, 3),
            textcoords="offset points",
        )


def _draw_trials(ax, classified: pd.DataFrame) -> None:
    """Every category of trial, the front as a step line, the budget as a vertical line."""
    for category, style in STYLE.items():
        part = classified[classified["category"] == category]
        if not part.empty:
            ax.scatter(part["cost"], part["val_metric"], **style)
    front = classified[classified["category"] == "front"].sort_values("cost")
    if len(front) > 1:
        ax.step(front["cost"], front["val_metric"], where="post", color="tab:red", lw=1, alpha=0.7)
    for row in front.itertuples():  # the number 'autoprune pick RUN_DIR --trial N' takes
        ax.annotate(
            str(int(row.number)),
            (row.cost, row.val_metric),
            fontsize=7,
            color="tab:red",
            xytext=(-4, -10),
            textcoords="offset points",
        )
    ax.axvline(1.0, color="tab:red", ls=":", lw=1, label="budget (cost / limit 1)")


def _save(fig, path: str | Path) -> Path:
    import matplotlib.pyplot as plt

    return save(plt, fig, path)


def pareto_plot(
    pareto: ParetoData, path: str | Path, *, cost_label: str, metric_label: str
) -> Path:
    """Validation metric against cost / limit: front, dominated, one-shot, infeasible, dense, seeds, final."""
    return _save(pareto_figure(pareto, cost_label=cost_label, metric_label=metric_label), path)


def pareto_figure(pareto: ParetoData, *, cost_label: str, metric_label: str):
    """The figure of :func:`pareto_plot`, not saved."""
    _, fig, ax = figure()
    classified = pareto.classified
    _draw_trials(ax, classified)
    _draw_dense(ax, pareto, classified["cost"][classified["category"] != "infeasible"])
    if not pareto.seeds.empty:
        _draw_seeds(ax, pareto.seeds)
    if pareto.final_point is not None:
        ax.scatter(
            [pareto.final_point[0]],
            [pareto.final_point[1]],
            marker="D",
            s=70,
            facecolor="none",
            edgecolor="tab:green",
            lw=2,
            zorder=6,
            label="final model"
            + (f" (trial {pareto.final_trial}" if pareto.final_trial is not None else " (")
            + ", after full fine-tune)",
        )
    ax.set_xlabel(cost_label)
    ax.set_ylabel(metric_label)
    ax.margins(MARGIN)  # every point inside the axes, the low outliers too
    ax.grid(alpha=0.3)
    legend_below(fig, ax)
    ax.set_title("Validation metric against cost")
    return fig


def sparsity_plot(layers: list[dict], path: str | Path) -> Path:
    """Per-layer weight sparsity and channel ratio of the final model."""
    return _save(sparsity_figure(layers), path)


def sparsity_figure(layers: list[dict]):
    """The figure of :func:`sparsity_plot`, not saved."""
    import numpy as np

    _, fig, ax = figure(7.0, 1.2 + 0.35 * max(4, len(layers)))
    names = [row["layer"] for row in layers]
    y = np.arange(len(names))
    ax.barh(
        y - 0.2,
        [row["sparsity"] for row in layers],
        height=0.38,
        color="tab:blue",
        label="weights removed",
    )
    ax.barh(
        y + 0.2,
        [row["channel_ratio"] for row in layers],
        height=0.38,
        color="tab:orange",
        label="channels removed",
    )
    ax.set_yticks(y, names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1 + MARGIN)
    ax.set_xlabel("fraction of the dense layer")
    legend_below(fig, ax, fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    ax.set_title("Final model: what each layer lost")
    return fig


def history_plot(trials: pd.DataFrame, path: str | Path) -> Path:
    """Each candidate's distance from the dense model by trial number, and the best confirmed so far."""
    return _save(history_figure(trials), path)


def history_figure(trials: pd.DataFrame):
    """The figure of :func:`history_plot`, not saved."""
    _, fig, ax = figure(7.0, 4.2)
    done = trials[(trials["state"] == "COMPLETE") & trials["fitness"].notna()]
    done = done[done["fitness"] > -1e29].sort_values("number")
    distance = (-done["fitness"]).clip(lower=1e-9)
    sure = (done["fidelity"] == "confirmed") & done["feasible"].astype(bool)
    ax.scatter(
        done.loc[~sure, "number"],
        distance[~sure],
        color="tab:gray",
        s=14,
        alpha=0.6,
        label="first look, or over budget",
    )
    ax.scatter(done.loc[sure, "number"], distance[sure], color="tab:blue", s=18, label="confirmed")
    if sure.any():
        best = distance[sure].set_axis(done.loc[sure, "number"]).cummin()
        full = best.reindex(done["number"]).ffill()
        ax.step(full.index, full.values, where="post", color="tab:red", label="best so far")
    ax.set_yscale("log")
    failed = trials[trials["state"] == "FAIL"]
    for number in failed["number"]:
        ax.axvline(number, color="black", alpha=0.15, lw=1)
    ax.set_xlabel("trial")
    ax.set_ylabel("distance from the dense model (lower is better)")
    ax.margins(MARGIN)
    ax.grid(alpha=0.3)
    legend_below(fig, ax, ncols=3)
    ax.set_title(
        "Optimisation history"
        + (f" ({len(failed)} failed trials as grey lines)" if len(failed) else "")
    )
    return fig
