"""A latency search times its confirmed candidates and corrects its latency model by what it measured."""

from __future__ import annotations

import pytest
import torch
from optuna.trial import TrialState
from torch.utils.flop_counter import FlopCounterMode

import autoprune.budgets._latency_model as latency_model_module
import autoprune.budgets._latency_table as latency_table_module
import autoprune.search._objective as objective_module
import autoprune.search._prepare as prepare_module
from autoprune.introspect import LatencyStats
from autoprune.search import SearchOptions, search
from autoprune.search._timing import correction_of

SLOWER = 1.25  # the machine runs every pruned model a quarter slower than the model predicts

SPACE = {
    "granularities": ["structured"],
    "criteria": ["l1"],
    "schedules": ["one-shot"],
    "levels": [1.0],
    "recovery": {"epochs": 0.1, "top": 1},
    "finetune": {"lr": 1e-3},
    "sensitivity": {"structured_grid": [0.5, 0.9], "tolerance": 1.0, "val_items": 300},
}


def test_the_correction_is_the_median_ratio_within_its_range():
    timed = [{"latency_measured_ms": m, "latency_modelled_ms": 1.0} for m in (1.1, 1.3, 9.0)]
    assert correction_of(timed) == 1.3  # the median: one wild timing does not move it
    assert correction_of([{"latency_measured_ms": 9.0, "latency_modelled_ms": 1.0}]) == 2.0
    assert correction_of([{"val_metric": 0.5}]) == 1.0


def _clock(model, example_input, *, batch_size=1, threads=1, repeats=1, warmup=0):
    """A deterministic machine: a forward pass takes 0.05 ms plus a microsecond per 1,000 FLOPs."""
    batch = example_input[:1].expand(batch_size, *example_input.shape[1:])
    with torch.no_grad(), FlopCounterMode(display=False) as flops:
        model.eval()(batch)
    ms = 0.05 + flops.get_total_flops() / 1e6
    return LatencyStats(ms, ms, ms, 0.0, ms, batch_size, threads, repeats)


def _search(task, out, monkeypatch, slower: float):
    """A latency search on a machine whose timings the latency model fits (:func:`_clock`), but
    that runs every candidate ``slower`` times the model's prediction once it is built."""
    for module in (prepare_module, latency_table_module, latency_model_module):
        monkeypatch.setattr(module, "measure_latency", _clock)

    def timed(ctx, policy):
        modelled = ctx.latency_model.predict_policy(ctx.cost_model, policy)
        return slower * modelled, modelled

    def measured(ctx, model):
        return slower * ctx.latency_model.predict_model(model, ctx.example_input)

    monkeypatch.setattr(objective_module, "timed_policy", timed)
    monkeypatch.setattr(objective_module, "measured_latency", measured)
    return search(
        task,
        "latency=0.5",
        space=SPACE,
        n_trials=6,
        out=out,
        progress=False,
        options=SearchOptions(latency_batch_size=512),
    )


def _candidates(result) -> list:
    trials = result.study.get_trials(states=[TrialState.COMPLETE])
    return [t for t in trials if "recover_of" not in t.user_attrs]


def test_confirmed_candidates_are_timed_and_later_ones_fitted_to_the_measurements(
    conv_task, tmp_path, monkeypatch
):
    result = _search(conv_task, tmp_path / "run", monkeypatch, SLOWER)
    ctx = result.context
    limit, aim = ctx.limit(ctx.budgets[0]), ctx.limits["latency"]
    candidates = _candidates(result)
    confirmed = [t for t in candidates if t.user_attrs["fidelity"] == "confirmed"]
    assert len(confirmed) >= 2
    for trial in confirmed:  # timed: the measured latency against the limit itself decides
        attrs = trial.user_attrs
        assert attrs["latency_measured_ms"] == pytest.approx(SLOWER * attrs["latency_modelled_ms"])
        assert attrs["costs"]["latency_ms"] == attrs["latency_measured_ms"]
        assert trial.constraints["latency"] == pytest.approx(
            attrs["latency_measured_ms"] / limit - 1
        )
    first = confirmed[0]
    assert first.user_attrs["latency_correction"] == 1.0  # nothing timed yet
    later = [t for t in confirmed if t.number > first.number]
    assert later and all(t.user_attrs["latency_correction"] == SLOWER for t in later)
    for trial in later:  # fitted by the corrected model: timed under the aim, so feasible
        assert trial.user_attrs["latency_measured_ms"] <= aim * (1 + 1e-9)
        assert trial.constraints["latency"] < 0
    trials = result.study.get_trials(states=[TrialState.COMPLETE])
    recovered = [t for t in trials if "recover_of" in t.user_attrs]
    assert recovered
    by_number = {t.number: t for t in trials}
    for trial in recovered:  # the recovered model keeps its candidate's widths, and its timing
        measured = trial.user_attrs["costs"]["latency_ms"]
        source = by_number[trial.user_attrs["recover_of"]]
        assert measured == source.user_attrs["latency_measured_ms"]
        assert trial.constraints["latency"] == pytest.approx(measured / limit - 1)
        assert measured <= limit
    assert "latency_modelled_ms" in result.trials.columns


def test_candidates_timed_over_the_limit_are_infeasible_and_never_recovered(
    conv_task, tmp_path, monkeypatch
):
    result = _search(conv_task, tmp_path / "run", monkeypatch, 100.0)
    confirmed = [t for t in _candidates(result) if t.user_attrs["fidelity"] == "confirmed"]
    assert confirmed and all(t.constraints["latency"] > 0 for t in confirmed)
    corrections = [t.user_attrs["latency_correction"] for t in _candidates(result)]
    assert corrections[0] == 1.0 and set(corrections[1:]) <= {2.0}  # bounded by its range
    assert "recover_of" not in result.trials or result.trials.recover_of.isna().all()
