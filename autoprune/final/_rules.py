"""Selection rules: which front candidates get the final fine-tune, and which one wins.

* ``best`` (default): the highest validation metric within the budget;
* ``smallest``: the cheapest candidate whose metric is within ``tolerance`` of the best;
* ``knee``: the knee of the front, the point farthest from the straight line
  between its cheapest and its most accurate ends (both axes scaled to [0, 1]).

:func:`shortlist` orders front candidates for the final fine-tune (the rule's
choice first); :func:`choose` applies the rule again to the candidates'
fully fine-tuned validation metrics.

Example:
    >>> import pandas as pd
    >>> front = pd.DataFrame({"number": [1, 2, 3], "val_metric": [0.80, 0.89, 0.90], "cost": [0.2, 0.5, 1.0]})
    >>> choose(front, "best"), choose(front, "smallest", tolerance=0.02), choose(front, "knee")
    (3, 2, 2)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from autoprune._validation import check_choice, check_fraction

RULES = ("best", "smallest", "knee")


def _knee_index(frame: pd.DataFrame) -> int:
    if len(frame) <= 2:
        return int(frame["val_metric"].to_numpy().argmax())
    cost, metric = frame["cost"].to_numpy(float), frame["val_metric"].to_numpy(float)
    x = (cost - cost.min()) / max(np.ptp(cost), 1e-12)
    y = (metric - metric.min()) / max(np.ptp(metric), 1e-12)
    a, b = (
        np.array([x[cost.argmin()], y[cost.argmin()]]),
        np.array([x[metric.argmax()], y[metric.argmax()]]),
    )
    direction = b - a
    norm = np.linalg.norm(direction)
    if norm < 1e-12:
        return int(metric.argmax())
    distance = np.abs(direction[0] * (y - a[1]) - direction[1] * (x - a[0])) / norm
    return int(distance.argmax())


def _ranked(frame: pd.DataFrame, rule: str, tolerance: float) -> pd.DataFrame:
    if rule == "best":
        return frame.sort_values(["val_metric", "cost"], ascending=[False, True], kind="stable")
    if rule == "smallest":
        best = frame["val_metric"].max()
        within = frame[frame["val_metric"] >= best - tolerance].sort_values(
            ["cost", "val_metric"], ascending=[True, False], kind="stable"
        )
        rest = frame.drop(within.index).sort_values(
            ["val_metric", "cost"], ascending=[False, True], kind="stable"
        )
        return pd.concat([within, rest])
    knee = _knee_index(frame.reset_index(drop=True))
    distance = (frame["cost"].reset_index(drop=True) - frame["cost"].iloc[knee]).abs().to_numpy()
    return frame.iloc[np.argsort(distance, kind="stable")]


def shortlist(
    front: pd.DataFrame, rule: str = "best", *, top: int = 3, tolerance: float = 0.005
) -> pd.DataFrame:
    """The ``top`` front candidates for the final fine-tune, the rule's preferred first."""
    check_choice("rule", rule, RULES)
    check_fraction("tolerance", tolerance, include_high=True)
    if front.empty:
        return front
    return _ranked(front, rule, tolerance).head(top)


def choose(candidates: pd.DataFrame, rule: str = "best", *, tolerance: float = 0.005) -> int:
    """The trial number the rule picks among ``candidates`` (columns number, val_metric, cost)."""
    check_choice("rule", rule, RULES)
    if candidates.empty:
        raise ValueError("No candidate to choose from.")
    return int(_ranked(candidates, rule, tolerance).iloc[0]["number"])
