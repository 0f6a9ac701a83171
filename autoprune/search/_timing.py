"""Latency that is measured, not assumed: the confirmed candidates of a latency search, timed.

The latency model predicts a candidate's latency from its widths; on the
candidates a search actually proposes (pressed against the sensitivity caps,
some groups nearly gone) it can be off by a tenth or more for one structure,
and on average the same way within a run. So under a latency budget every
*confirmed* candidate is pruned for real (a copy of the dense model at the
widths it reached) and timed side by side with the dense model: its measured
latency decides whether it meets the aim (3% under the limit, for a model timed
again moves by a few percent), and once :data:`MIN_TIMED` are timed, the median
ratio of measured to modelled latency corrects the model
(:attr:`SearchContext.latency_correction`) that fits the candidates after it.

Example:
    >>> ratios = [{"latency_measured_ms": 6.0, "latency_modelled_ms": 5.0},
    ...           {"latency_measured_ms": 4.4, "latency_modelled_ms": 4.0}, {"val_metric": 0.9}]
    >>> correction_of(ratios)  # too few timings yet
    1.0
    >>> correction_of([*ratios, {"latency_measured_ms": 3.45, "latency_modelled_ms": 3.0}])
    1.15
"""

from __future__ import annotations

import statistics

import torch
from optuna.trial import TrialState

from autoprune.introspect import side_by_side_latency
from autoprune.policy import Policy

#: how far the correction may move the model's predictions (a run's measurements, not outliers)
CORRECTION_RANGE = (0.5, 2.0)
#: the timings a correction needs (before: the model as fitted)
MIN_TIMED = 3
#: interleaved rounds and runs per round when a candidate is timed during the search
ROUNDS, REPEATS = 3, 10


def correction_of(attrs: list[dict]) -> float:
    """The median measured / modelled latency over the timed candidates' attributes (1.0: fewer
    than :data:`MIN_TIMED`)."""
    ratios = [
        a["latency_measured_ms"] / a["latency_modelled_ms"]
        for a in attrs
        if a.get("latency_measured_ms") and a.get("latency_modelled_ms")
    ]
    if len(ratios) < MIN_TIMED:
        return 1.0
    low, high = CORRECTION_RANGE
    return round(min(high, max(low, statistics.median(ratios))), 6)


def latency_correction(study, *running: dict) -> float:
    """:func:`correction_of` over the study's finished trials (and a running trial's attributes)."""
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return correction_of([*(t.user_attrs for t in trials), *running])


def measured_latency(ctx, model: torch.nn.Module) -> float:
    """``model``'s latency (ms) timed side by side with the dense model, on the search's dense scale.

    The ratio of the two is what a relative budget promises, and interleaving
    cancels the machine's load; it is scaled by the dense latency the search
    was set up with, the one its limits come from.
    """
    setup = ctx.setup
    timed = side_by_side_latency(
        {"dense": ctx.dense, "model": model.eval()},
        ctx.example_input,
        rounds=ROUNDS,
        repeats=REPEATS,
        batch_size=setup.latency_batch_size,
        threads=setup.latency_threads,
    )
    ratio = timed["model"]["median_ms"] / timed["dense"]["median_ms"]
    return ratio * ctx.dense_costs.latency_ms


def timed_policy(ctx, policy: Policy) -> tuple[float, float]:
    """(measured, modelled) latency in ms of the dense model pruned to ``policy``'s widths.

    ``policy`` is the local policy of the amounts a candidate reached
    (:meth:`SearchContext.reached_policy`, ranked by magnitude: which channels go
    does not change the time).
    """
    from autoprune.apply import apply_policy

    pruned = apply_policy(ctx.fresh_dense(), policy, example_input=ctx.example_input, check=False)
    modelled = ctx.latency_model.predict_policy(ctx.cost_model, policy)
    return measured_latency(ctx, pruned.model), modelled
