"""Pareto fronts of (metric to maximise, cost to minimise) points.

A point dominates another when it is at least as good on both axes and
strictly better on one. Equal points do not dominate each other.

Example:
    >>> pareto_mask([0.9, 0.8, 0.95, 0.85], [10, 5, 20, 12]).tolist()
    [True, True, True, False]
"""

from __future__ import annotations

import numpy as np


def pareto_mask(metric, cost) -> np.ndarray:
    """Boolean mask of the non-dominated points (O(n log n))."""
    metric = np.asarray(metric, dtype=float)
    cost = np.asarray(cost, dtype=float)
    order = np.lexsort((-metric, cost))  # by cost ascending, then metric descending
    mask = np.zeros(len(metric), dtype=bool)
    best = -np.inf  # best metric among strictly cheaper points
    i = 0
    while i < len(order):
        j = i
        while j < len(order) and cost[order[j]] == cost[order[i]]:
            j += 1
        group = order[i:j]
        top = metric[group].max()
        if top > best:
            mask[group[metric[group] == top]] = True
            best = top
        i = j
    return mask
