"""Runtime estimate of a comparison run on an idle 2-core machine.

Each cell costs its matching (probes; a seed-independent method matches once
per budget, a latency probe is a latency measurement), the one-shot step, two
test evaluations, the shared recovery (``epochs`` of training; smaller for
structured models, more with a distillation teacher), the cost measurements
and, for structured rows and latency budgets, a latency measurement. A search
cell costs its trials, its share of the sensitivity analysis (once per seed)
and the same regimes. Cells a method cannot run (n/a) cost nothing. It is a
plan, not a promise: a loaded machine is slower. The search costs are those of
the search the figures were measured with (re-measure them when it changes).

Example:
    >>> from benchmarks.compare import full, quick
    >>> round(sum(estimate_seconds(quick()).values()) / 60), round(sum(estimate_seconds(full()).values()) / 60)
    (12, 286)
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from autoprune.budgets import parse_budget
from benchmarks._context import RunSettings
from benchmarks._runner import plan_cells
from benchmarks.methods import get_method


@dataclass(frozen=True)
class TaskCost:
    """Seconds on the idle 2-core reference machine.

    ``epoch``: a training epoch of the dense model; ``trial``: a search trial;
    ``test``: the test split once; ``latency``: a side-by-side latency
    measurement of 5 rounds of 30 runs; ``sensitivity``: the analysis, once per
    seed; ``probe``: pricing one knob of a bisection (prune a copy, count);
    ``recoveries``: how many candidates a search trains back when ``trial`` does
    not already count them (their length: the run's ``search_recovery_epochs``,
    else its space's own).
    """

    epoch: float
    trial: float
    test: float
    latency: float
    sensitivity: float
    probe: float
    test_size: int = 10_000
    recoveries: int = 0


# fashion-cnn: 5 epochs in 78 s; a search candidate 1.1 s, its recoveries apart (60 candidates and
# 4 recoveries of 0.5 epoch in 102 s); fashion-resnet's candidates scaled by its epoch cost from it
# (first estimates: re-measure with the full run). fashion-resnet: 5 epochs in 251 s,
# structured sensitivity 42 s of 130. minilm-fidelity (its full run at bf15f4a): 125 steps of 32
# sentences of 64 tokens an epoch, ~1 s a step (OWL's 7 recovery steps in 6-8 s); a search of 10
# candidates 344-442 s without its sensitivity analysis (115-135 s), five recoveries of 0.5 epoch
# (5 x 62 s) included: 9 s a candidate, the recoveries apart; a probe copies, prunes and counts
# the encoder in ~0.15 s (a data-driven criterion's statistics are collected once). Latency at
# batch 8 for it.
REFERENCE_COSTS = {
    "fashion-cnn": TaskCost(
        epoch=16.0, trial=1.1, test=2.5, latency=4.5, sensitivity=20.0, probe=0.3, recoveries=4
    ),
    "fashion-resnet": TaskCost(
        epoch=50.0, trial=2.3, test=7.0, latency=7.0, sensitivity=45.0, probe=1.0, recoveries=4
    ),
    "minilm-fidelity": TaskCost(
        epoch=125.0,
        trial=9.0,
        test=15.0,
        latency=10.0,
        sensitivity=125.0,
        probe=0.15,
        test_size=600,
        recoveries=5,
    ),
}


def _probes(s: RunSettings) -> float:
    """A bisection's probes: a 10-step walk, then halving a tenth of the range down to the tolerance."""
    return 10 + math.log2(0.1 / s.match_tol)


def _regimes(cost: TaskCost, method, kind: str | None, s: RunSettings) -> float:
    """The one-shot step, both test evaluations, the recovery and the measurements of one cell."""
    latency = method.structured or method.fixed or kind == "latency"
    rounds = cost.latency * s.latency_rounds * (s.latency_repeats + 3) / 165 if latency else 0.0
    train = s.epochs * cost.epoch * (0.6 if method.structured else 1.1)
    train *= 1.3 if s.distill_weight > 0 else 1.0
    test = cost.test * (min(1.0, s.test_items / cost.test_size) if s.test_items else 1.0)
    return 2 * test + train + rounds + 1.5


def _matching(cost: TaskCost, method, kind: str | None, s: RunSettings, n_seeds: int) -> float:
    if method.fixed or method.series == "search":
        return 0.0
    probe = cost.probe + (cost.latency * 2 * 8 / 165 if kind == "latency" else 0.0)
    share = 1.0 / n_seeds if method.seed_free else 1.0
    return _probes(s) * probe * share


def _cell_seconds(cost: TaskCost, method, kind: str | None, s: RunSettings, n_seeds: int) -> float:
    seconds = _regimes(cost, method, kind, s) + _matching(cost, method, kind, s, n_seeds)
    if method.series == "search":
        seconds += s.trials * cost.trial + cost.test + (25.0 if kind == "latency" else 0.0)
        seconds += cost.recoveries * _search_recovery_epochs(s) * cost.epoch
    return seconds


@functools.cache
def _space_recovery_epochs(space: str) -> float:
    from autoprune.search import load_space

    return load_space(space).recovery.epochs


def _search_recovery_epochs(s: RunSettings) -> float:
    """How long the search trains back each of its best candidates: the run's setting, else its space's."""
    if s.search_recovery_epochs is not None:
        return s.search_recovery_epochs
    return _space_recovery_epochs(s.space)


def estimate_seconds(config) -> dict[str, float]:
    """Estimated wall time per task on the idle reference machine (tasks without reference costs are left out)."""
    out = {}
    for plan in config.tasks:
        cost = REFERENCE_COSTS.get(plan.name)
        if cost is None:
            continue
        settings, methods = config.settings(plan), config.methods_of(plan)
        total = 0.0
        for cells in plan_cells(plan.name, plan.budgets, methods, config.seeds):
            for cell in cells:
                method = get_method(cell.method)
                budget = parse_budget(cell.budget) if cell.budget else None
                if method.unsupported(None, budget) is None:
                    kind = budget.kind if budget else None
                    total += _cell_seconds(cost, method, kind, settings, len(config.seeds))
        if "autoprune" in methods:
            total += len(config.seeds) * cost.sensitivity
        out[plan.name] = total
    return out
