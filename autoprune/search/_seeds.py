"""Seed trials: the one-line heuristics, queued before anything is sampled, at every budget level.

For each level of the space and each granularity it allows, the heuristics a
user would otherwise apply, each fitted to the level (every unit bounded by its
sensitivity cap):

- ``uniform``: the same amount on every unit;
- ``sensitivity``: each unit what its sensitivity curve allows at a common
  damage level (when the analysis ran);
- ``greedy`` (structured, when the analysis ran): channels removed step by
  step where the curves lose least per unit of budget saved (HALP's greedy
  knapsack; under a latency budget the cost is the per-layer latency table);
- ``erk`` (unstructured): Erdos-Renyi-Kernel densities, a layer's density
  proportional to (sum of its dimensions) / (product of its dimensions);
- ``owl`` (unstructured): outlier-weighted layerwise sparsity (Yin et al.
  2024): layers with more outlier weights (|w| x mean |x| above 5 times its
  layer's mean) are pruned less;
- ``global``: one magnitude ranking across layers (channels for structured);
- ``lamp`` (unstructured): the global ranking of LAMP scores (Lee et al. 2021);
- ``global-taylor`` (structured): the global ranking of Taylor scores;
- ``depth1-uniform``, ``depth2-uniform`` (with depth in the space, at the budget):
  the one or two blocks whose removal raises the loss least, and uniform widths;
- ``inputshalf-uniform``, ``inputsquarter-uniform`` (with inputs in the space, at
  the budget): the most important half or quarter of the input features, and
  uniform widths.

Each is the parameters of a queued trial, so the evolution starts from the best
of them and a search can only improve on them.

Example:
    >>> from autoprune.search._context import example_context
    >>> [name for _, name in seed_trials(example_context())][:4]
    ['uniform:unstructured@1', 'sensitivity:unstructured@1', 'erk:unstructured@1', 'owl:unstructured@1']
"""

from __future__ import annotations

import torch

from autoprune._bisect import first_true
from autoprune.errors import BudgetError
from autoprune.introspect import prunable_layers
from autoprune.prune import Calibration, Pruner, get_criterion
from autoprune.prune._statistics import collect_statistics
from autoprune.search._context import SearchContext
from autoprune.sensitivity import greedy_allocation, sensitivity_allocation, uniform_allocation

OWL_LAMBDA = 0.08  # OWL's spread of layer sparsities around the target
OWL_M = 5.0  # an outlier scores above this many times its layer's mean
DEPTH_SEEDS = 2  # with depth in the space: seeds removing the 1 .. this many least important blocks
INPUT_SEEDS = (("half", 0.5), ("quarter", 0.25))  # with inputs in the space: features kept by seeds


def _cost_fn(
    ctx: SearchContext,
    granularity: str,
    blocks: tuple[str, ...] = (),
    inputs: tuple[int, ...] | None = None,
):
    def cost(allocation: dict[str, float]) -> float:
        policy = ctx.policy(granularity, allocation, blocks=blocks, inputs=inputs)
        estimates = ctx.estimate(policy)
        return max(estimates[k] / limit for k, limit in ctx.limits.items())

    return cost


def _first_criterion(ctx: SearchContext, *preferred: str) -> str:
    return next((c for c in preferred if c in ctx.space.criteria), ctx.space.criteria[0])


def _params(ctx: SearchContext, granularity: str, criterion: str, scope: str, level: float) -> dict:
    params = {"granularity": granularity, "criterion": criterion}
    params.update({f"depth:{b}": 0 for b in ctx.blocks})  # heuristics keep every block
    if ctx.features:
        params["inputs"] = len(ctx.features)  # and every input feature
    if len(ctx.space.levels) > 1:
        params["level"] = level
    scopes = [s for s in ctx.space.scopes if not (granularity == "nm" and s == "global")]
    if len(scopes) > 1:
        params["scope"] = scope
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


def _shaped(shape: dict[str, float], caps: dict[str, float], cost, target: float):
    """``amount(k) = clamp(shape(k))`` for the smallest k in [0, 1] meeting ``target``."""

    def make(k: float) -> dict[str, float]:
        return {u: min(caps[u], max(0.0, f(k))) for u, f in shape.items()}

    if cost(make(1.0)) > target:
        raise BudgetError("even at the caps it does not meet the budget")
    return make(first_true(lambda k: cost(make(k)) <= target, steps=40))


def _erk_shape(ctx: SearchContext, units: list[str]) -> dict:
    layers = prunable_layers(ctx.dense)
    density = {}
    for name in units:
        dims = list(layers[name].weight.shape)
        density[name] = sum(dims) / float(torch.tensor(dims, dtype=torch.float64).prod())
    top = max(density.values())
    return {u: (lambda k, d=density[u] / top: 1.0 - (1.0 - k) * d) for u in units}


def _owl_shape(ctx: SearchContext, units: list[str]) -> dict:
    layers = prunable_layers(ctx.dense)
    stats = collect_statistics(
        ctx.dense, layers, Calibration.from_task(ctx.task), needs={"act_in"}, seed=ctx.setup.seed
    )
    criterion = get_criterion("activation")
    ratio = {}
    for name in units:
        scores = criterion.weight_scores(layers[name], stats.get(name, {}))
        ratio[name] = float((scores > OWL_M * scores.mean()).float().mean())
    low, high = min(ratio.values()), max(ratio.values())
    spread = {u: 0.0 if high <= low else (r - low) / (high - low) for u, r in ratio.items()}
    return {u: (lambda k, s=spread[u]: k + OWL_LAMBDA * (1.0 - 2.0 * s)) for u in units}


def _local_seeds(ctx: SearchContext, granularity: str, level: float) -> list[tuple[dict, str]]:
    caps = {u: hi for u, (_, hi) in ctx.bounds[granularity].items()}
    units, cost = list(caps), _cost_fn(ctx, granularity)
    makers = {"uniform": lambda: uniform_allocation(units, cost=cost, target=level, caps=caps)}
    if granularity in ctx.sensitivity:
        makers["sensitivity"] = lambda: sensitivity_allocation(
            ctx.sensitivity[granularity], cost=cost, target=level, caps=caps, units=units
        )
        if granularity == "structured":
            makers["greedy"] = lambda: greedy_allocation(
                ctx.sensitivity[granularity], cost=cost, target=level, caps=caps, units=units
            )
    if granularity == "unstructured":
        makers["erk"] = lambda: _shaped(_erk_shape(ctx, units), caps, cost, level)
        makers["owl"] = lambda: _shaped(_owl_shape(ctx, units), caps, cost, level)
    criterion = _first_criterion(ctx, "l1", "l2")
    seeds = []
    for name, make in makers.items():
        try:
            allocation = make()
        except BudgetError:
            continue  # this heuristic cannot reach this level within the caps
        params = {
            **_params(ctx, granularity, criterion, "local", level),
            **_local_params(ctx, granularity, allocation),
        }
        seeds.append((params, f"{name}:{granularity}@{level:g}"))
    return seeds


def _depth_seeds(ctx: SearchContext, granularity: str, level: float) -> list[tuple[dict, str]]:
    """The uniform widths with the k least important blocks removed (k = 1, 2), fitted to ``level``.

    A block's importance is the loss increase when it is skipped (a few training batches).
    """
    from autoprune.prune.depth import block_scores
    from autoprune.tasks import iterate_batches

    data = iterate_batches(ctx.task.train_data, batch_size=ctx.task.batch_size)
    scores = block_scores(ctx.fresh_dense(), ctx.blocks, data, ctx.task.loss)
    ranked = sorted(ctx.blocks, key=lambda b: scores[b].loss)
    caps = {u: hi for u, (_, hi) in ctx.bounds[granularity].items()}
    seeds = []
    for k in range(1, min(DEPTH_SEEDS, len(ranked)) + 1):
        blocks = tuple(sorted(ranked[:k], key=ctx.blocks.index))
        cost = _cost_fn(ctx, granularity, blocks)
        try:
            allocation = uniform_allocation(list(caps), cost=cost, target=level, caps=caps)
        except BudgetError:
            continue
        params = {
            **_params(ctx, granularity, _first_criterion(ctx, "l1", "l2"), "local", level),
            **_local_params(ctx, granularity, allocation),
            **{f"depth:{b}": 1 for b in blocks},
        }
        seeds.append((params, f"depth{k}-uniform:{granularity}@{level:g}"))
    return seeds


def _global_seeds(ctx: SearchContext, granularity: str, level: float) -> list[tuple[dict, str]]:
    criteria = {"global": _first_criterion(ctx, "l1", "l2")}
    if granularity == "unstructured" and "lamp" in ctx.space.criteria:
        criteria["lamp"] = "lamp"
    if granularity == "structured" and "taylor" in ctx.space.criteria:
        criteria["global-taylor"] = "taylor"
    seeds, cost = [], _cost_fn(ctx, granularity)
    for name, criterion in criteria.items():
        amount = _global_amount(ctx, granularity, cost, criterion=criterion, level=level)
        if amount is not None:
            params = {
                **_params(ctx, granularity, criterion, "global", level),
                f"global:{granularity}": amount,
            }
            seeds.append((params, f"{name}:{granularity}@{level:g}"))
    return seeds


def _input_seeds(ctx: SearchContext, granularity: str, level: float) -> list[tuple[dict, str]]:
    """The uniform widths keeping the most important half and quarter of the input features."""
    caps = {u: hi for u, (_, hi) in ctx.bounds[granularity].items()}
    n = len(ctx.features)
    seeds = []
    for share, count in INPUT_SEEDS:
        kept = max(1, round(n * count))
        cost = _cost_fn(ctx, granularity, inputs=ctx.kept_features(kept))
        try:
            allocation = uniform_allocation(list(caps), cost=cost, target=level, caps=caps)
        except BudgetError:
            continue
        params = {
            **_params(ctx, granularity, _first_criterion(ctx, "l1", "l2"), "local", level),
            **_local_params(ctx, granularity, allocation),
            "inputs": kept,
        }
        seeds.append((params, f"inputs{share}-uniform:{granularity}@{level:g}"))
    return seeds


def seed_trials(ctx: SearchContext) -> list[tuple[dict, str]]:
    """(params, name) of every heuristic that fits its level (one that cannot reach it is left out)."""
    seeds = []
    for level in ctx.space.levels:
        for granularity in ("unstructured", "structured"):
            if granularity not in ctx.granularities:
                continue
            if "local" in ctx.space.scopes:
                seeds += _local_seeds(ctx, granularity, level)
            if "global" in ctx.space.scopes:
                seeds += _global_seeds(ctx, granularity, level)
            if ctx.blocks and level == ctx.space.levels[0] and "local" in ctx.space.scopes:
                seeds += _depth_seeds(ctx, granularity, level)
            if ctx.features and level == ctx.space.levels[0] and "local" in ctx.space.scopes:
                seeds += _input_seeds(ctx, granularity, level)
    return seeds


def _global_amount(
    ctx: SearchContext, granularity: str, cost, *, criterion: str, level: float
) -> float | None:
    """The smallest global amount (ranking by ``criterion``) whose allocation meets ``level``."""
    policy = ctx.policy(granularity, {}, scope="global", global_amount=0.0, criterion=criterion)
    pruner = Pruner(ctx.fresh_dense(), policy, calibration=Calibration.from_task(ctx.task))
    capacity = pruner.max_global_amount()

    def allocation_cost(amount: float) -> float:
        return cost(pruner.amounts(lambda _final: amount))

    if allocation_cost(capacity) > level:
        return None  # even at the caps this ranking cannot reach this level
    return first_true(lambda amount: allocation_cost(amount) <= level, 0.0, capacity)
