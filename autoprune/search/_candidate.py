"""Candidates: sample a policy from the space, then fit it to the budget.

The sampler picks granularity, scope, criterion, schedule, learning rate, a
``budget_use`` (the share of the budget the candidate spends) and the
amounts: one per unit (or per sensitivity tier) for local scope, one global
amount for global scope. The amounts are then *fitted* to that share: an
allocation over it moves every unit the same fraction of the way towards its
cap until the estimate fits; one under it moves towards the lower bounds as
far as it still fits (bisection on the analytic cost model). The sampled
values keep their proportions; the share decides the cost. A candidate that
cannot fit even at its caps is flagged and rejected before any fine-tuning.

Example:
    >>> import optuna
    >>> from autoprune.search._context import example_context
    >>> ctx = example_context()
    >>> trial = optuna.create_study(directions=["maximize", "minimize"]).ask()
    >>> candidate = suggest(trial, ctx)
    >>> candidate.fits and ctx.meets(candidate.estimates)
    True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from autoprune._bisect import first_true, last_true
from autoprune.policy import Policy
from autoprune.prune import Calibration, Pruner
from autoprune.search._context import SearchContext

REPAIR_STEPS = 24


@dataclass
class Candidate:
    """A sampled, budget-fitted policy and what is known about it before pruning."""

    policy: Policy
    granularity: str
    scope: str
    amounts: dict[str, float | str]
    estimates: dict[str, float]
    budget_use: float
    repaired: bool = False
    fits: bool = True
    info: dict = field(default_factory=dict)


def _repair(
    up: Callable[[float], tuple[dict, dict]],
    down: Callable[[float], tuple[dict, dict]],
    ctx: SearchContext,
    use: float,
) -> tuple[dict, dict, bool, bool]:
    """Fit the allocation to ``use`` of the budget.

    ``up(beta)`` prunes more as beta grows (towards the caps), ``down(beta)`` less
    (towards the lower bounds). An allocation over the aim moves up just enough to
    fit; one under it moves down as far as it still fits, so the candidate spends
    the share of the budget it was sampled to spend.
    """
    amounts, estimates = up(0.0)
    if ctx.meets(estimates, use):
        if ctx.meets(down(1.0)[1], use):
            return (*down(1.0), True, True)
        beta = last_true(lambda b: ctx.meets(down(b)[1], use), steps=REPAIR_STEPS)
        return (*down(beta), beta > 0, True)
    top_amounts, top_estimates = up(1.0)
    if not ctx.meets(top_estimates, use):
        return top_amounts, top_estimates, True, False
    return (*up(first_true(lambda b: ctx.meets(up(b)[1], use), steps=REPAIR_STEPS)), True, True)


def _lr(trial, ctx: SearchContext) -> float:
    low, high = ctx.space.finetune.lr
    return low if low == high else trial.suggest_float("lr", low, high, log=True)


def _amount(trial, name: str, low: float, high: float) -> float:
    return low if high - low < 1e-9 else trial.suggest_float(name, low, high)


def suggest(trial, ctx: SearchContext) -> Candidate:
    """Sample one candidate for ``trial`` and fit it to the budget."""
    space = ctx.space
    granularity = trial.suggest_categorical("granularity", list(ctx.granularities))
    scopes = [s for s in space.scopes if not (granularity == "nm" and s == "global")] or ["local"]
    scope = trial.suggest_categorical("scope", scopes) if len(scopes) > 1 else scopes[0]
    criterion = trial.suggest_categorical("criterion", list(space.criteria))
    schedule = trial.suggest_categorical("schedule", list(space.schedules))
    lr = _lr(trial, ctx)
    low_use, high_use = space.budget_use
    use = low_use if low_use == high_use else trial.suggest_float("budget_use", low_use, high_use)
    common = dict(criterion=criterion, schedule=schedule, lr=lr)

    if granularity == "nm":
        amounts = {
            u: trial.suggest_categorical(f"nm:{u}", ["dense", *space.nm]) for u in ctx.units["nm"]
        }
        policy = ctx.policy("nm", amounts, **common)
        estimates = ctx.estimate(policy)
        return Candidate(
            policy, granularity, "local", amounts, estimates, use, fits=ctx.meets(estimates, use)
        )

    bounds = ctx.bounds[granularity]
    if scope == "global":
        return _suggest_global(trial, ctx, granularity, bounds, use, common)

    if space.tiers:
        tiers = ctx.tiers(granularity)
        levels = {
            t: trial.suggest_float(f"{granularity}:tier{t}", 0.0, 1.0)
            for t in sorted(set(tiers.values()))
        }
        sampled = {u: lo + levels[tiers[u]] * (hi - lo) for u, (lo, hi) in bounds.items()}
    else:
        sampled = {
            u: _amount(trial, f"{granularity}:{u}", lo, hi) for u, (lo, hi) in bounds.items()
        }

    def allocation(target_of):
        def make(beta: float):
            amounts = {u: a + beta * (target_of(u) - a) for u, a in sampled.items()}
            return amounts, ctx.estimate(ctx.policy(granularity, amounts, **common))

        return make

    up, down = allocation(lambda u: bounds[u][1]), allocation(lambda u: bounds[u][0])
    amounts, estimates, repaired, fits = _repair(up, down, ctx, use)
    policy = ctx.policy(granularity, amounts, **common)
    return Candidate(policy, granularity, "local", amounts, estimates, use, repaired, fits)


def _suggest_global(
    trial, ctx: SearchContext, granularity: str, bounds, use: float, common: dict
) -> Candidate:
    """One global amount; the per-unit allocation comes from ranking the criterion's scores."""
    pruner = Pruner(
        ctx.fresh_dense(),
        ctx.policy(granularity, {}, scope="global", global_amount=0.0, **common),
        calibration=Calibration.from_task(ctx.task),
    )
    capacity = pruner.max_global_amount()
    sampled = trial.suggest_float(f"global:{granularity}", 0.0, max(capacity, 1e-6))

    def allocation(target: float):
        def make(beta: float):
            amount = min(capacity, sampled + beta * (target - sampled))
            allocation = pruner.amounts(lambda _final, amount=amount: amount)
            return {"global": amount, **allocation}, ctx.estimate(
                ctx.policy(granularity, allocation, **common)
            )

        return make

    amounts, estimates, repaired, fits = _repair(allocation(capacity), allocation(0.0), ctx, use)
    policy = ctx.policy(granularity, {}, scope="global", global_amount=amounts["global"], **common)
    return Candidate(policy, granularity, "global", amounts, estimates, use, repaired, fits)
