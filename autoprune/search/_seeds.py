"""Seed trials: the sensitivity analysis's policies, enqueued before anything is sampled.

For each granularity the space allows (unstructured, structured) the seeds
that already meet the budget: uniform, sensitivity-proportional and global
magnitude (:mod:`autoprune.sensitivity._seeds`), and for unstructured pruning
global LAMP (Lee et al. 2021), the strongest fixed allocation at high
sparsity. Each becomes the parameters of an enqueued trial, so the sampler
learns from good points first.

Example:
    >>> from autoprune.search._context import example_context
    >>> [name for _, name in seed_trials(example_context())]  # the quick space: local scope only
    ['uniform:unstructured', 'sensitivity:unstructured']
"""

from __future__ import annotations

import math
import warnings

from autoprune._bisect import first_true
from autoprune.errors import BudgetError
from autoprune.prune import Calibration, Pruner
from autoprune.search._context import SearchContext
from autoprune.sensitivity import sensitivity_allocation, uniform_allocation


def _cost_fn(ctx: SearchContext, granularity: str):
    def cost(allocation: dict[str, float]) -> float:
        estimates = ctx.estimate(ctx.policy(granularity, allocation))
        return max(estimates[k] / limit for k, limit in ctx.limits.items())

    return cost


def _common_params(ctx: SearchContext, granularity: str, scope: str) -> dict:
    space = ctx.space
    params = {
        "granularity": granularity,
        "criterion": "l1" if "l1" in space.criteria else space.criteria[0],
    }
    scopes = [s for s in space.scopes if not (granularity == "nm" and s == "global")]
    if len(scopes) > 1:
        params["scope"] = scope
    params["schedule"] = "one-shot" if "one-shot" in space.schedules else space.schedules[0]
    low, high = space.finetune.lr
    if low != high:
        params["lr"] = math.sqrt(low * high)
    low_use, high_use = space.budget_use
    if low_use != high_use:
        params["budget_use"] = high_use
    return params


def _local_params(ctx: SearchContext, granularity: str, allocation: dict[str, float]) -> dict:
    bounds = ctx.bounds[granularity]
    if ctx.space.tiers:
        tiers = ctx.tiers(granularity)
        levels: dict[int, list[float]] = {}
        for unit, amount in allocation.items():
            lo, hi = bounds[unit]
            levels.setdefault(tiers[unit], []).append(
                0.0 if hi <= lo else (amount - lo) / (hi - lo)
            )
        return {
            f"{granularity}:tier{t}": min(1.0, max(0.0, sum(v) / len(v))) for t, v in levels.items()
        }
    return {
        f"{granularity}:{u}": min(hi, max(lo, allocation[u]))
        for u, (lo, hi) in bounds.items()
        if hi - lo >= 1e-9
    }


def seed_trials(ctx: SearchContext) -> list[tuple[dict, str]]:
    """(params, name) of every seed that fits the budget; seeds that cannot are skipped with a warning."""
    seeds = []
    for granularity in ("unstructured", "structured"):
        if granularity not in ctx.granularities or granularity not in ctx.sensitivity:
            continue
        caps = {u: hi for u, (_, hi) in ctx.bounds[granularity].items()}
        units = list(caps)
        cost = _cost_fn(ctx, granularity)
        for name in ("uniform", "sensitivity"):
            try:
                if name == "uniform":
                    allocation = uniform_allocation(units, cost=cost, target=1.0, caps=caps)
                else:
                    allocation = sensitivity_allocation(
                        ctx.sensitivity[granularity], cost=cost, target=1.0, caps=caps, units=units
                    )
            except BudgetError as exc:
                warnings.warn(f"Seed '{name}' ({granularity}) skipped: {exc}", stacklevel=2)
                continue
            params = {
                **_common_params(ctx, granularity, "local"),
                **_local_params(ctx, granularity, allocation),
            }
            seeds.append((params, f"{name}:{granularity}"))
        if "global" not in ctx.space.scopes:
            continue
        common = _common_params(ctx, granularity, "global")
        criteria = {"global": common["criterion"]}  # global magnitude, then LAMP's normalised one
        if (
            granularity == "unstructured"
            and "lamp" in ctx.space.criteria
            and "lamp" not in criteria.values()
        ):
            criteria["lamp"] = "lamp"
        for name, criterion in criteria.items():
            amount = _global_amount(ctx, granularity, cost, criterion=criterion)
            if amount is not None:
                params = {**common, "criterion": criterion, f"global:{granularity}": amount}
                seeds.append((params, f"{name}:{granularity}"))
    return seeds


def _global_amount(ctx: SearchContext, granularity: str, cost, *, criterion: str) -> float | None:
    """The smallest global amount (ranking by ``criterion``) whose allocation meets the budget."""
    policy = ctx.policy(granularity, {}, scope="global", global_amount=0.0, criterion=criterion)
    pruner = Pruner(ctx.fresh_dense(), policy, calibration=Calibration.from_task(ctx.task))
    capacity = pruner.max_global_amount()

    def allocation_cost(amount: float) -> float:
        return cost(pruner.amounts(lambda _final: amount))

    if allocation_cost(capacity) > 1.0:
        warnings.warn(
            f"Global seed ({granularity}, {criterion}) skipped: even at the caps it does not fit the budget.",
            stacklevel=2,
        )
        return None
    return first_true(lambda amount: allocation_cost(amount) <= 1.0, 0.0, capacity)
