"""The report's figures: every point drawn lies inside the axes, the legend never covers the data."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from autoprune.report._data import pareto_data
from autoprune.report._plots import history_figure, pareto_figure, sparsity_figure

EDGE_PX = 2.0  # a point at least this far inside the axes' frame


def _trials() -> pd.DataFrame:
    """Recovered, one-shot, infeasible and seed trials, with outliers far below and far right."""
    rows = [
        # number, feasible, fidelity, val_metric, cost, seed, fitness
        (0, True, "recovered", 0.95, 0.80, "", -0.02),
        (1, True, "recovered", 0.93, 0.50, "", -0.05),
        (2, True, "recovered", 0.90, 0.30, "", -0.10),
        (3, True, "recovered", 0.05, 0.20, "", -4.0),  # collapsed: very low accuracy
        (4, True, "confirmed", 0.10, 0.40, "uniform:unstructured", -2.5),
        (5, True, "confirmed", 0.60, 0.90, "global:structured", -0.6),
        (6, False, "rejected", 0.97, 3.50, "", -0.001),  # far over budget
        (7, True, "scored", math.nan, 0.70, "", -0.3),
    ]
    trials = pd.DataFrame(
        rows, columns=["number", "feasible", "fidelity", "val_metric", "cost", "seed", "fitness"]
    )
    trials["state"] = "COMPLETE"
    failed = {"number": 8, "state": "FAIL", "feasible": False, "fidelity": "", "seed": ""}
    return pd.concat([trials, pd.DataFrame([failed])], ignore_index=True)


def _run(dense_params: int) -> dict:
    return {
        "setup": {"budgets": ["params=0.1"]},
        "limits": {"params": 100.0},
        "dense_costs": {"params": dense_params},
        "dense": {"val_metric": 0.96},
    }


def _drawn_points(ax) -> np.ndarray:
    """Display coordinates of every scatter point and every data line vertex of ``ax``."""
    points = [c.get_offsets() for c in ax.collections if c.get_offset_transform() == ax.transData]
    points += [ln.get_xydata() for ln in ax.lines if ln.get_transform() == ax.transData]
    data = np.concatenate([np.asarray(p, dtype=float).reshape(-1, 2) for p in points])
    data = data[np.isfinite(data).all(axis=1)]
    return ax.transData.transform(data)


def _check_layout(fig, n_points: int) -> None:
    fig.canvas.draw()
    ax = fig.axes[0]
    frame = ax.get_window_extent()
    points = _drawn_points(ax)
    assert len(points) >= n_points
    for x, y in points:
        assert frame.x0 + EDGE_PX <= x <= frame.x1 - EDGE_PX, (x, frame)
        assert frame.y0 + EDGE_PX <= y <= frame.y1 - EDGE_PX, (y, frame)
    legends = [*fig.legends, *([ax.get_legend()] if ax.get_legend() else [])]
    assert legends
    for legend in legends:
        box = legend.get_window_extent()
        assert not box.overlaps(frame)  # off the data area
        assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1  # and not cut off
        assert fig.bbox.y0 <= box.y0 and box.y1 <= fig.bbox.y1


@pytest.mark.parametrize("dense_params", [100, 5000])  # dense as a point, or as a line far right
def test_pareto_figure_shows_every_point_and_keeps_the_legend_off_the_data(dense_params):
    import matplotlib.pyplot as plt

    trials = _trials()
    front = trials.iloc[[0, 1, 2]]
    pareto = pareto_data(_run(dense_params), trials, front, final=None)
    pareto = dataclasses.replace(pareto, final_point=(0.5, 0.94))
    fig = pareto_figure(pareto, cost_label="params / limit", metric_label="validation accuracy")
    try:
        # 7 drawn trials, the seeds again, the final point, the front's step line
        _check_layout(fig, n_points=7 + 2 + 1)
        low, high = fig.axes[0].get_ylim()
        assert low < 0.05 and high > 0.97
        assert fig.axes[0].get_xlim()[1] > 3.5
    finally:
        plt.close(fig)


def test_history_figure_shows_every_point_and_keeps_the_legend_off_the_data():
    import matplotlib.pyplot as plt

    fig = history_figure(_trials())
    try:
        _check_layout(fig, n_points=8)
        low, high = fig.axes[0].get_ylim()
        assert low < 0.001 and high > 4.0  # the log axis spans every distance
    finally:
        plt.close(fig)


def test_sparsity_figure_keeps_the_legend_off_the_bars():
    import matplotlib.pyplot as plt

    layers = [
        {"layer": f"fc{i}", "sparsity": s, "channel_ratio": c}
        for i, (s, c) in enumerate([(1.0, 1.0), (0.9, 0.0), (0.2, 0.95), (0.99, 0.5)])
    ]
    fig = sparsity_figure(layers)
    try:
        fig.canvas.draw()
        ax = fig.axes[0]
        assert all(bar.get_width() < ax.get_xlim()[1] for bar in ax.patches)
        frame = ax.get_window_extent()
        assert fig.legends and not fig.legends[0].get_window_extent().overlaps(frame)
    finally:
        plt.close(fig)
