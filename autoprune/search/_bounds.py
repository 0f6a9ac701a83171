"""Each unit's amount range in a search: the space's, capped by the sensitivity analysis.

Example:
    >>> from autoprune.search._context import example_context
    >>> ctx = example_context("params=0.3")
    >>> bounds, relaxed = unit_bounds(ctx)
    >>> sorted(bounds["unstructured"]), relaxed
    (['fc1', 'fc2', 'fc3'], {})
"""

from __future__ import annotations

from autoprune.errors import SearchSpaceError
from autoprune.introspect import prunable_layers
from autoprune.policy import AMOUNT_FIELD


def unit_bounds(ctx) -> tuple[dict[str, dict[str, tuple[float, float]]], dict[str, float | None]]:
    """Each unit's amount range: the space's, capped by the sensitivity analysis.

    Caps guide the search; they never make a budget unreachable, nor squeeze
    every candidate against them: when every unit at its cap misses the space's
    lowest level of the budget (half of it by default), the tolerance is doubled
    until it does not (at most to 1.0, then no caps), so candidates at the budget
    itself still have room to move amounts between units. The second mapping
    says so (granularity -> the tolerance used, None for no caps).
    """
    relaxed: dict[str, float | None] = {}
    bounds = {}
    for granularity in ctx.units:
        if granularity == "nm":
            continue
        tolerance = ctx.space.sensitivity.tolerance
        bounds[granularity] = _capped(ctx, granularity, tolerance)
        while granularity in ctx.sensitivity and not _reachable(
            ctx, granularity, bounds[granularity]
        ):
            tolerance = None if tolerance is None or tolerance >= 1.0 else min(1.0, 2 * tolerance)
            bounds[granularity] = _capped(ctx, granularity, tolerance)
            relaxed[granularity] = tolerance
            if tolerance is None:
                break
    return bounds, relaxed


def _capped(ctx, granularity: str, tolerance: float | None) -> dict[str, tuple[float, float]]:
    """Unit -> (low, high): the space's range, capped at ``tolerance`` (None: not capped)."""
    space_range = getattr(ctx.space, AMOUNT_FIELD[granularity])
    caps = {}
    if granularity in ctx.sensitivity and tolerance is not None:
        caps = ctx.sensitivity[granularity].caps(tolerance, interpolate=True)
    bounds = {}
    for unit in ctx.units[granularity]:
        low, high = space_range.bounds(unit)
        high = min(high, caps.get(unit, high))
        bounds[unit] = (min(low, high), high)
    return bounds


def _reachable(ctx, granularity: str, bounds: dict[str, tuple[float, float]]) -> bool:
    """Whether every unit at its upper bound meets the space's lowest level of the budget."""
    return _share_at_caps(ctx, granularity, bounds) <= min(ctx.space.levels)


def _share_at_caps(ctx, granularity: str, bounds: dict[str, tuple[float, float]]) -> float:
    """The largest share of a limit the policy with every unit at its upper bound spends."""
    caps = {u: high for u, (_, high) in bounds.items()}
    estimates = ctx.estimate(ctx.policy(granularity, caps))
    return max(estimates[k] / limit for k, limit in ctx.limits.items())


def reached_levels(ctx) -> dict[str, tuple[float, ...]]:
    """Granularity -> the levels of the space it can reach with every unit at its upper bound.

    A level a granularity cannot reach is one its candidates would all miss: the
    sampler proposes it only for granularities that reach it. With blocks or input
    features in the search, removing them makes room too, so every level counts.

    Example:
        >>> from autoprune.search._context import example_context
        >>> reached_levels(example_context("params=0.3"))
        {'unstructured': (1.0, 0.6)}
    """
    out = {}
    for granularity, bounds in ctx.bounds.items():
        if ctx.blocks or ctx.features:
            out[granularity] = tuple(ctx.space.levels)
            continue
        share = _share_at_caps(ctx, granularity, bounds)
        out[granularity] = tuple(level for level in ctx.space.levels if share <= level)
    return out


def check_overrides(ctx) -> None:
    """Per-layer ranges of the space must name layers (or structured units) the model has."""
    known = {
        "sparsity": list(prunable_layers(ctx.dense)),
        "channel_ratio": list(ctx.cost_model.groups),
    }
    for field, names in known.items():
        for layer in getattr(ctx.space, field).layers:
            if layer not in names:
                raise SearchSpaceError(
                    f"{field}.layers.{layer}: the model has no such "
                    f"{'layer' if field == 'sparsity' else 'structured unit'}; "
                    f"it has {', '.join(names) or 'none'}."
                )
