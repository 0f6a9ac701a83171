"""Runtime estimate of a comparison run on the idle 2-core reference machine.

The cost of each cell is built from a few per-task figures measured on that
machine (an epoch, a fine-tuned search trial, the test split, a latency
measurement, the sensitivity analysis); cells a method cannot run (n/a) cost
nothing. It is a plan, not a promise: a loaded machine is slower.

Example:
    >>> from benchmarks.compare import full, quick
    >>> round(estimate_seconds(quick())["fashion-cnn"] / 60), round(sum(estimate_seconds(full()).values()) / 60)
    (12, 167)
"""

from __future__ import annotations

from dataclasses import dataclass

from autoprune.budgets import parse_budget
from benchmarks._context import RunSettings
from benchmarks._runner import plan_cells
from benchmarks.methods import get_method


@dataclass(frozen=True)
class TaskCost:
    """Seconds on the 2-core reference machine, idle.

    ``epoch``: one training epoch of the dense model; ``trial``: a fine-tuned search
    trial (screened-only trials are cheaper: this errs long); ``test``: evaluating
    the test split; ``latency``: a side-by-side latency measurement of 5 rounds of
    30 runs; ``sensitivity``: the analysis of the default space, once per seed.
    """

    epoch: float
    trial: float
    test: float
    latency: float
    sensitivity: float


# fashion-cnn: 5 epochs in 78 s; a 40-trial search: fine-tuned trials 12.3 s, screened 1.2 s (results/runs/).
# fashion-resnet: 5 epochs in 251 s; a trial fine-tunes 0.5 epoch and evaluates 5,000 validation items;
# its structured sensitivity took 42 s, the unstructured one has 60 points of 2,000 items.
REFERENCE_COSTS = {
    "fashion-cnn": TaskCost(epoch=16.0, trial=12.3, test=2.5, latency=4.5, sensitivity=20.0),
    "fashion-resnet": TaskCost(epoch=50.0, trial=26.0, test=7.0, latency=7.0, sensitivity=130.0),
}


def _cell_seconds(cost: TaskCost, method, kind: str | None, s: RunSettings) -> float:
    latency = kind == "latency"
    row = cost.test + cost.latency * s.latency_rounds * (s.latency_repeats + 3) / 165 + 1.0
    if method.name == "dense":
        return row
    if method.series == "search":
        # trials; the pinned dense checkpoint is evaluated twice (test and validation); the final fine-tune
        # and finalize's own measurements; then ours (and, for latency, samples and the front's latency)
        return (
            s.trials * cost.trial
            + 3 * cost.test
            + 0.8 * s.epochs * cost.epoch
            + cost.test
            + cost.latency
            + row
            + (25.0 if latency else 0.0)
        )
    if (
        method.structured
    ):  # smaller models train faster; ~17 traced probes; latency probes are measured
        return 0.6 * s.epochs * cost.epoch + row + 8.0 + (25.0 if latency else 0.0)
    # masked training costs a little more than dense; ~17 probes (LAMP's ranking takes ~1 s a probe)
    return 1.1 * s.epochs * cost.epoch + row + 9.0


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
                    total += _cell_seconds(cost, method, budget.kind if budget else None, settings)
        if "autoprune" in methods:
            total += len(config.seeds) * cost.sensitivity
        out[plan.name] = total
    return out
