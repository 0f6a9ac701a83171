"""Under a latency budget: the front's most accurate candidate, measured just over, tightened to fit.

The search times each candidate once; the final step measures the front again,
and a candidate the search timed under its aim can measure a few percent over
(5% on ``fashion-resnet`` at 0.3x the dense latency). Dropping it for the
fastest one that meets the budget gave away a whole level of the front (0.61
instead of 0.81 after recovery). Instead, when the most accurate front
candidate is over, its widths are narrowed as a width multiplier narrows them:
every kept share times ``1 - t`` (:func:`tightened`), the smallest ``t`` up to
:data:`MOST` whose model measures under the aim found by bisection on
measured latency, side by side with the dense model (NetAdapt's measured
shrink). The candidate keeps its trial number; its front latency row records
``tightened = t``.

Example:
    >>> from autoprune.policy import LayerPolicy, Policy
    >>> policy = Policy(layers={"conv": LayerPolicy("structured", channel_ratio=0.5)})
    >>> tightened(policy, 0.1).layers["conv"].channel_ratio  # half kept, times 0.9
    0.55
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from autoprune._bisect import first_true
from autoprune.final._choose import timed_beside_dense
from autoprune.final._summary import FrontLatency
from autoprune.policy import Policy
from autoprune.training import prune_and_finetune

MOST = 0.3  # the largest share of the kept widths a candidate is narrowed by
STEPS = 4  # bisection steps: the kept widths to within MOST / 16 (about 2%)
# interleaved timing rounds of a probe (the front is measured in 3; a probe decides a width)
ROUNDS = 5


def tightened(policy: Policy, t: float) -> Policy:
    """``policy`` with every kept share multiplied by ``1 - t`` (N:M layers as they are)."""

    def narrower(amount: float | None) -> float | None:
        return None if amount is None else 1.0 - (1.0 - amount) * (1.0 - t)

    layers = {
        name: replace(
            layer,
            sparsity=narrower(layer.sparsity),
            channel_ratio=narrower(layer.channel_ratio),
        )
        for name, layer in policy.layers.items()
    }
    return replace(policy, layers=layers, global_sparsity=narrower(policy.global_sparsity))


def tighten_front(
    ctx, front: pd.DataFrame, shapes, rows: list[FrontLatency], budget
) -> list[FrontLatency]:
    """Tighten the front's most accurate candidate when it measures over and no candidate as accurate meets.

    ``shapes`` (:class:`~autoprune.final._finetune.Shapes`) then holds the
    tightened policy under its number; the returned rows say what it measures.
    """
    by_number = {r.number: r for r in rows}
    metric = dict(zip(front["number"].astype(int), front["val_metric"].astype(float), strict=True))
    best = max(rows, key=lambda r: metric[r.number])
    if best.met or any(r.met and metric[r.number] >= metric[best.number] for r in rows):
        return rows
    found = _narrowest_needed(ctx, shapes.policies[best.number], budget)
    if found is None:
        return rows
    t, policy, measured_ms, dense_ms = found
    shapes.replace(best.number, policy)
    limit = budget.limit(dense_ms)
    by_number[best.number] = replace(
        best,
        measured_ms=measured_ms,
        measured_vs_dense=measured_ms / dense_ms,
        limit_ms=limit,
        met=measured_ms <= limit,
        tightened=round(t, 4),
    )
    return [by_number[r.number] for r in rows]


def _narrowest_needed(ctx, policy: Policy, budget):
    """(t, tightened policy, its ms, dense ms) for the smallest ``t`` measured under the aim, or None."""
    timings: dict[float, tuple[float, float]] = {}

    def fits(t: float) -> bool:
        model = prune_and_finetune(ctx.fresh_dense(), tightened(policy, t), ctx.task, epochs=0)
        latency = timed_beside_dense(ctx, {"tightened": model.model}, rounds=ROUNDS)
        dense = latency["dense"]["median_ms"]
        timings[t] = (latency["tightened"]["median_ms"], dense)
        return timings[t][0] <= budget.aim(dense)

    if not fits(MOST):
        return None
    t = first_true(fits, 0.0, MOST, steps=STEPS)
    return (t, tightened(policy, t), *timings[t])
