"""Budget matching for the baselines: bisection on a method's own knob, and ERK densities.

Every budget-driven baseline has one knob (a global amount, a uniform channel
ratio, torch-pruning's ``pruning_ratio``, ERK's overall density) whose cost moves
(mostly) monotonically with it. :func:`bisect_knob` finds the knob nearest the
budget boundary that still meets the budget; the cost function it is given
prunes a copy of the real model and measures it, so the match is exact, not
estimated.

:func:`erk_densities` is the Erdos-Renyi-Kernel allocation of Evci et al. (2020,
"Rigging the Lottery"): a layer's density is proportional to the sum of its
weight dimensions over their product, scaled so the kept weights are the
requested share of all weights; a layer that would exceed density 1 is kept
dense and the rest are scaled again (largest first, as in RigL's code).

Example:
    >>> match = bisect_knob(lambda x: 1.0 - x, 0.25, low=0.0, high=0.99, tol=1e-4)
    >>> round(match.knob, 3), match.cost <= 0.25
    (0.75, True)
    >>> {k: round(v, 4) for k, v in erk_densities({"a": (4, 4), "b": (16, 4)}, 0.4).items()}
    {'a': 0.5714, 'b': 0.3571}
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from autoprune.errors import BudgetError


class BudgetUnreachable(BudgetError):
    """Even the knob's far end does not meet the budget (the method cannot reach it)."""

    def __init__(self, message: str, *, best_cost: float) -> None:
        super().__init__(message)
        self.best_cost = best_cost


@dataclass(frozen=True)
class Match:
    """The knob found, its cost (same unit as the limit) and how many costs were measured."""

    knob: float
    cost: float
    probes: int


def bisect_knob(
    cost: Callable[[float], float],
    limit: float,
    *,
    low: float,
    high: float,
    increasing: bool = False,
    steps: int = 10,
    tol: float = 1e-3,
    max_probes: int = 40,
) -> Match:
    """The knob in ``[low, high]`` nearest the budget boundary whose ``cost`` is at most ``limit``.

    With ``increasing=False`` (more pruning, lower cost) it is the smallest such
    knob; with ``increasing=True`` (e.g. a density) the largest. The range is
    first walked in ``steps`` equal steps from the cheap-to-keep end (no pruning)
    until the cost meets the limit; then the last step is bisected until it is
    narrower than ``tol`` (or ``max_probes`` costs were measured). Walking first
    keeps the match right when the far end misbehaves (e.g. a pruner that skips a
    layer it would have emptied). The knob returned met the limit when measured.
    Raises :class:`BudgetUnreachable` when no step meets the limit.

    Example:
        >>> bisect_knob(lambda x: x, 0.3, low=0.0, high=1.0, increasing=True, tol=1e-3).knob <= 0.3
        True
    """
    if not low < high:
        raise ValueError(
            f"The 'low' parameter must be below 'high'. Got low={low!r}, high={high!r} instead."
        )
    measured: dict[float, float] = {}

    def probe(x: float) -> float:
        if x not in measured:
            measured[x] = float(cost(x))
        return measured[x]

    start, end = (high, low) if increasing else (low, high)
    walk = [start + (end - start) * i / steps for i in range(steps + 1)]
    if probe(walk[0]) <= limit:
        return Match(walk[0], probe(walk[0]), len(measured))
    risky, safe = walk[0], None
    for x in walk[1:]:
        if probe(x) <= limit:
            safe = x
            break
        risky = x
    if safe is None:
        best = min(measured.values())
        raise BudgetUnreachable(
            f"over its whole range ({low:g} to {high:g}) the lowest cost is {best:.6g}, above the limit {limit:.6g}",
            best_cost=best,
        )
    while abs(safe - risky) > tol and len(measured) < max_probes:
        middle = (safe + risky) / 2
        if probe(middle) <= limit:
            safe = middle
        else:
            risky = middle
    return Match(safe, probe(safe), len(measured))


def erk_scores(shapes: dict[str, Sequence[int]]) -> dict[str, float]:
    """ERK's raw score of each layer: sum of its weight dimensions over their product."""
    return {name: sum(shape) / math.prod(shape) for name, shape in shapes.items()}


def erk_densities(shapes: dict[str, Sequence[int]], density: float) -> dict[str, float]:
    """Per-layer densities (kept fraction of weights) of ERK at an overall weight ``density``.

    Example:
        >>> d = erk_densities({"small": (2, 2), "big": (100, 100)}, 0.5)
        >>> d["small"], round(d["big"], 4)
        (1.0, 0.4998)
    """
    if isinstance(density, bool) or not isinstance(density, (int, float)) or not 0 < density <= 1:
        raise ValueError(f"The 'density' parameter must be in (0, 1]. Got {density!r} instead.")
    sizes = {name: math.prod(shape) for name, shape in shapes.items()}
    raw = erk_scores(shapes)
    kept_total = density * sum(sizes.values())
    dense: set[str] = set()
    scale = 0.0
    while True:
        free = [n for n in sizes if n not in dense]
        if not free:
            break
        scale = (kept_total - sum(sizes[n] for n in dense)) / sum(raw[n] * sizes[n] for n in free)
        largest = max(free, key=lambda n: raw[n])
        if scale * raw[largest] <= 1.0:
            break
        dense.add(largest)
    return {n: 1.0 if n in dense else scale * raw[n] for n in sizes}


OWL_M = 5.0  # an outlier scores above M times its layer's mean score (OWL's default)
OWL_LAMBDA = 0.08  # layer densities spread over [density - lambda, density + lambda] ...
OWL_DENSITY = (
    0.3  # ... at the paper's 70% sparsity; at lower densities the spread shrinks in proportion
)


@torch.no_grad()
def outlier_ratios(model, task, *, seed: int = 0, images: int = 256, m: float = OWL_M) -> dict:
    """Each prunable layer's share of outlier weights: ``|W| x input norm`` above ``m`` x its mean.

    The input norm of an input feature (channel) is the L2 norm of its
    activations over ``images`` seeded training items (Wanda's score).
    """
    from autoprune.introspect import prunable_layers
    from autoprune.tasks import iterate_batches
    from autoprune.tasks._data import take

    layers = prunable_layers(model)
    squares: dict[str, torch.Tensor] = {}

    def hook(name):
        def record(module, inputs, _output):
            x = inputs[0].detach().float()
            feature = x.dim() - 1 if isinstance(module, torch.nn.Linear) else 1
            total = x.pow(2).sum(dim=[d for d in range(x.dim()) if d != feature])
            squares[name] = squares.get(name, 0) + total

        return record

    handles = [module.register_forward_hook(hook(name)) for name, module in layers.items()]
    was_training = model.training
    model.eval()
    try:
        for inputs, _ in iterate_batches(take(task.train_data, images, seed=seed), batch_size=64):
            model(inputs)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    ratios = {}
    for name, module in layers.items():
        weight = module.weight.detach().abs()
        norm = squares.get(name)
        if norm is None or norm.numel() != weight.shape[1]:
            norm = torch.ones(weight.shape[1])
        shape = [1, -1] + [1] * (weight.dim() - 2)
        score = weight * norm.sqrt().view(shape)
        ratios[name] = float((score > m * score.mean()).float().mean())
    return ratios


def owl_densities(ratios: dict[str, float], density: float, lam: float = OWL_LAMBDA) -> dict:
    """OWL's per-layer densities: outlier ratios rescaled to a spread of ``2 lam`` around ``density``.

    Below a density of 0.3 (OWL's 70% sparsity) the spread shrinks with the density
    (``lam * density / 0.3``), so every layer keeps a positive share at 1-2% density.

    Example:
        >>> {k: round(v, 2) for k, v in owl_densities({"a": 0.0, "b": 0.01, "c": 0.02}, 0.5).items()}
        {'a': 0.42, 'b': 0.5, 'c': 0.58}
        >>> {k: round(v, 4) for k, v in owl_densities({"a": 0.0, "b": 0.01, "c": 0.02}, 0.03).items()}
        {'a': 0.022, 'b': 0.03, 'c': 0.038}
    """
    lam = lam * min(1.0, density / OWL_DENSITY)
    values = list(ratios.values())
    low, high = min(values), max(values)
    if high - low <= 0:
        return dict.fromkeys(ratios, min(1.0, density))
    scaled = {k: (v - low) / (high - low) * 2 * lam for k, v in ratios.items()}
    mean = sum(scaled.values()) / len(scaled)
    return {k: min(1.0, max(1e-3, v - mean + density)) for k, v in scaled.items()}
