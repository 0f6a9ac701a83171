"""Candidates: a proposal of the sampler, fitted to its share of the budget exactly.

The sampler (:mod:`._evolution`) gives a budget *level*, a granularity, a
criterion and the amounts: one per unit (or per sensitivity tier) for local
scope; the heuristic seeds may give one global amount instead. The amounts are
then *fitted* to the level: an allocation over it moves every unit the same
fraction of the way towards its cap until the analytic estimate fits; one under
it moves towards the lower bounds as far as it still fits (bisection on the
cost model). The proposal keeps its proportions; the level decides the cost. A
candidate that cannot fit even at its caps is flagged and scored no further.
With ``inputs`` in the space, a trial also chooses how many input features to
keep (the most important ones, :func:`~autoprune.prune.inputs.rank_inputs`); the
widths are then fitted around them.

Example:
    >>> import optuna
    >>> from autoprune.search._context import example_context
    >>> ctx = example_context()
    >>> trial = optuna.create_study(directions=["maximize", "minimize"]).ask()
    >>> candidate = suggest(trial, ctx)
    >>> candidate.fits and ctx.meets(candidate.estimates, candidate.level)
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
    """A proposed, budget-fitted policy and what is known about it before pruning."""

    policy: Policy
    granularity: str
    scope: str
    amounts: dict[str, float | str]
    estimates: dict[str, float]
    level: float  # the share of the budget it was fitted to
    criterion: str = "l1"
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


def _amount(trial, name: str, low: float, high: float) -> float:
    return low if high - low < 1e-9 else trial.suggest_float(name, low, high)


def suggest(trial, ctx: SearchContext) -> Candidate:
    """The candidate of ``trial``: its sampled (or queued) proposal fitted to its level."""
    space = ctx.space
    levels = list(space.levels)
    level = trial.suggest_categorical("level", levels) if len(levels) > 1 else levels[0]
    granularity = trial.suggest_categorical("granularity", list(ctx.granularities))
    scopes = [s for s in space.scopes if not (granularity == "nm" and s == "global")] or ["local"]
    scope = trial.suggest_categorical("scope", scopes) if len(scopes) > 1 else scopes[0]
    criterion = trial.suggest_categorical("criterion", list(space.criteria))
    blocks = tuple(b for b in ctx.blocks if trial.suggest_categorical(f"depth:{b}", [0, 1]))
    n_features = len(ctx.features)
    inputs = ctx.kept_features(trial.suggest_int("inputs", 1, n_features)) if n_features else None
    kept = dict(blocks=blocks, inputs=inputs)  # what goes whole, before the widths

    if granularity == "nm":
        amounts = {
            u: trial.suggest_categorical(f"nm:{u}", ["dense", *space.nm]) for u in ctx.units["nm"]
        }
        policy = ctx.policy("nm", amounts, criterion=criterion, **kept)
        estimates = ctx.estimate(policy)
        return Candidate(
            policy,
            granularity,
            "local",
            amounts,
            estimates,
            level,
            fits=ctx.meets(estimates, level),
        )

    bounds = ctx.bounds[granularity]
    if scope == "global":
        return _suggest_global(trial, ctx, granularity, level, criterion, inputs)
    sampled = _local_proposal(trial, ctx, granularity, bounds)

    def allocation(target_of):
        def make(beta: float):
            amounts = {u: a + beta * (target_of(u) - a) for u, a in sampled.items()}
            policy = ctx.policy(granularity, amounts, criterion=criterion, **kept)
            return amounts, ctx.estimate(policy)

        return make

    up, down = allocation(lambda u: bounds[u][1]), allocation(lambda u: bounds[u][0])
    amounts, estimates, repaired, fits = _repair(up, down, ctx, level)
    policy = ctx.policy(granularity, amounts, criterion=criterion, **kept)
    return Candidate(
        policy, granularity, "local", amounts, estimates, level, criterion, repaired, fits
    )


def _local_proposal(trial, ctx: SearchContext, granularity: str, bounds) -> dict[str, float]:
    """One amount per unit: sampled per unit, or per sensitivity tier when the space asks."""
    if ctx.space.tiers:
        tiers = ctx.tiers(granularity)
        levels = {
            t: trial.suggest_float(f"{granularity}:tier{t}", 0.0, 1.0)
            for t in sorted(set(tiers.values()))
        }
        return {u: lo + levels[tiers[u]] * (hi - lo) for u, (lo, hi) in bounds.items()}
    return {u: _amount(trial, f"{granularity}:{u}", lo, hi) for u, (lo, hi) in bounds.items()}


def _suggest_global(
    trial, ctx: SearchContext, granularity: str, level: float, criterion: str, inputs
) -> Candidate:
    """One global amount; the per-unit allocation comes from ranking the criterion's scores
    (on the dense model; only the input features ``inputs`` are kept, None: all)."""
    pruner = Pruner(
        ctx.fresh_dense(),
        ctx.policy(granularity, {}, scope="global", global_amount=0.0, criterion=criterion),
        calibration=Calibration.from_task(ctx.task),
    )
    capacity = pruner.max_global_amount()
    sampled = trial.suggest_float(f"global:{granularity}", 0.0, max(capacity, 1e-6))

    def allocation(target: float):
        def make(beta: float):
            amount = min(capacity, sampled + beta * (target - sampled))
            allocation = pruner.amounts(lambda _final, amount=amount: amount)
            return {"global": amount, **allocation}, ctx.estimate(
                ctx.policy(granularity, allocation, criterion=criterion, inputs=inputs)
            )

        return make

    amounts, estimates, repaired, fits = _repair(allocation(capacity), allocation(0.0), ctx, level)
    policy = ctx.policy(
        granularity,
        {},
        scope="global",
        global_amount=amounts["global"],
        criterion=criterion,
        inputs=inputs,
    )
    return Candidate(
        policy, granularity, "global", amounts, estimates, level, criterion, repaired, fits
    )
