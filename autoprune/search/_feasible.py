"""Whether a search can succeed at all: some policy of the space must meet every budget.

Example:
    >>> from autoprune.search._context import example_context
    >>> check_feasible(example_context("params=0.3"))  # a reachable budget: nothing to say
"""

from __future__ import annotations

from autoprune.errors import BudgetError
from autoprune.policy import LayerPolicy, Policy
from autoprune.search._context import SearchContext


def _nm_fits(ctx: SearchContext) -> bool:
    pattern = ctx.space.nm[0]
    policy = Policy(layers={u: LayerPolicy(granularity="nm", nm=pattern) for u in ctx.units["nm"]})
    return ctx.meets(ctx.estimate(policy))


def check_feasible(ctx: SearchContext) -> None:
    """Raise when no granularity of the space meets the budget even with every unit at its cap."""
    reasons = []
    for granularity in ctx.granularities:
        if granularity == "nm":
            if _nm_fits(ctx):
                return
            reasons.append("nm: every eligible layer at its N:M pattern is not enough")
            continue
        caps = {u: hi for u, (_, hi) in ctx.bounds[granularity].items()}
        estimates = ctx.estimate(ctx.policy(granularity, caps))
        if ctx.meets(estimates):
            return
        over = ", ".join(
            f"{k} {estimates[k]:,.6g} > {ctx.limits[k]:,.6g}"
            for k in ctx.limits
            if estimates[k] > ctx.limits[k]
        )
        tight = sorted(caps.items(), key=lambda kv: kv[1])[:4]
        reasons.append(
            f"{granularity}: with every unit at its cap, {over}; the tightest caps are "
            + ", ".join(f"{u} {c:.2f}" for u, c in tight)
        )
    raise BudgetError(
        "No policy in the search space can meet the budget. "
        + "; ".join(reasons)
        + ". Raise the space's upper amounts, or loosen the budget."
    )
