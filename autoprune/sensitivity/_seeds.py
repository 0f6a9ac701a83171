"""Seed policies: good first trials that already meet the budget.

Each seed is a per-unit allocation of amounts (sparsity, or channel ratio for
structured units) found by bisection on one knob until ``cost(amounts) <=
target``:

* ``uniform``: the same amount everywhere;
* ``sensitivity``: every unit gets the amount its curve allows for a common
  damage level (more to robust layers, less to fragile ones);
* ``greedy``: channels removed in small steps, each from the unit whose curve
  loses least per unit of cost saved, until the target is met (the greedy
  knapsack HALP solves over a latency table; with a latency budget ``cost``
  reads the search's per-layer table);
* ``global``: the allocation a global magnitude ranking makes (computed by the
  search with the Pruner's own ranking, :mod:`autoprune.search._seeds`).

``cost`` maps an allocation to the budgeted quantity (parameters, MACs, ...)
and must not increase when amounts grow. Caps bound every unit.

Example:
    >>> sizes = {"a": 100, "b": 900}
    >>> cost = lambda amounts: sum(n * (1 - amounts.get(u, 0)) for u, n in sizes.items())
    >>> alloc = uniform_allocation(list(sizes), cost=cost, target=500)
    >>> round(alloc["a"], 3), cost(alloc) <= 500
    (0.5, True)
"""

from __future__ import annotations

import math
from collections.abc import Callable

from autoprune._bisect import first_true
from autoprune.errors import BudgetError

Allocation = dict[str, float]
CostFn = Callable[[Allocation], float]


def _bisect(make: Callable[[float], Allocation], cost: CostFn, target: float) -> Allocation:
    """The allocation at the smallest knob in [0, 1] that meets ``target`` (the knob's top must meet it)."""
    top = make(1.0)
    if cost(top) > target:
        raise BudgetError(
            f"Even the most pruning this seed allows costs {cost(top):,.4g}, above the target {target:,.4g}."
        )
    return make(first_true(lambda k: cost(make(k)) <= target, steps=40))


def uniform_allocation(
    units: list[str],
    *,
    cost: CostFn,
    target: float,
    caps: dict[str, float] | None = None,
    top: float | None = None,
) -> Allocation:
    """The same amount on every unit (capped), the smallest that meets ``target``.

    The amounts range up to ``top`` (default: the largest cap, or 0.99 without caps).
    """
    caps = caps or {}
    top = top if top is not None else max(caps.values(), default=0.99)
    return _bisect(lambda k: {u: min(k * top, caps.get(u, top)) for u in units}, cost, target)


def sensitivity_allocation(
    sens,
    *,
    cost: CostFn,
    target: float,
    caps: dict[str, float] | None = None,
    units: list[str] | None = None,
) -> Allocation:
    """Each unit takes what its curve allows at a common damage level, the lowest that meets ``target``."""
    caps = caps or {}
    units = units or sens.units
    worst = max(1e-6, float(sens.table["drop"].fillna(sens.dense_metric).max()))

    def make(k: float) -> Allocation:
        tolerance = k * worst
        return {u: min(sens.allowed_amount(u, tolerance), caps.get(u, 0.99)) for u in units}

    return _bisect(make, cost, target)


def greedy_allocation(
    sens,
    *,
    cost: CostFn,
    target: float,
    caps: dict[str, float] | None = None,
    units: list[str] | None = None,
    step: float = 0.05,
) -> Allocation:
    """Steps of ``step``, each to the unit with the least damage per cost saved, until ``target``.

    The last step is shortened to meet ``target`` exactly.
    """
    caps = caps or {}
    units = units or sens.units
    amounts = dict.fromkeys(units, 0.0)
    current = cost(amounts)
    while current > target:
        best = None
        for unit in units:
            grown = min(amounts[unit] + step, caps.get(unit, 0.99))
            if grown <= amounts[unit]:
                continue  # at its cap
            saved = current - cost({**amounts, unit: grown})
            if saved <= 0:
                continue
            damage = sens.damage(unit, grown) - sens.damage(unit, amounts[unit])
            key = (max(0.0, damage) / saved, -saved)
            if best is None or key < best[0]:
                best = (key, unit, grown)
        if best is None:  # no single step saves anything (a cost that moves with all units)
            amounts = _step_all(amounts, caps, step, cost, target, current)
        else:
            _, unit, grown = best
            before = amounts[unit]
            if cost({**amounts, unit: grown}) <= target:  # the last step: only as far as needed
                grown = first_true(
                    lambda a, u=unit, base=amounts: cost({**base, u: a}) <= target,
                    before,
                    grown,
                    steps=30,
                )
            amounts[unit] = grown
        current = cost(amounts)
    return amounts


def _step_all(
    amounts: Allocation, caps: dict[str, float], step: float, cost: CostFn, target: float, current
) -> Allocation:
    """Every unit the fewest ``step``s further (capped) that save something, only as far as
    ``target`` needs; an error when even the caps save nothing."""
    for k in range(1, math.ceil(1 / step) + 1):
        top = {u: min(a + k * step, caps.get(u, 0.99)) for u, a in amounts.items()}
        if cost(top) < current:
            break
    else:
        raise BudgetError(
            f"Even the most pruning the caps allow costs {current:,.4g}, above the target "
            f"{target:,.4g}."
        )

    def part(t: float) -> Allocation:
        return {u: a + t * (top[u] - a) for u, a in amounts.items()}

    if cost(top) > target:
        return top
    return part(first_true(lambda t: cost(part(t)) <= target, steps=30))
