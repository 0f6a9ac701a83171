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
    def timed(*measured):
        return [{"latency_measured_ms": m, "latency_modelled_ms": 1.0} for m in measured]

    # the median: one wild timing does not move it
    assert correction_of(timed(1.1, 1.3, 9.0)) == 1.3
    assert correction_of(timed(9.0, 9.0, 9.0)) == 2.0  # bounded
    assert correction_of(timed(1.3, 1.3)) == 1.0  # too few timings: the model as fitted
    assert correction_of([{"val_metric": 0.5}] * 3) == 1.0


def _clock(model, example_input, *, batch_size=1, threads=1, repeats=1, warmup=0):
    """A deterministic machine: a forward pass takes 0.05 ms plus a microsecond per 1,000 FLOPs."""
    batch = example_input[:1].expand(batch_size, *example_input.shape[1:])
    with torch.no_grad(), FlopCounterMode(display=False) as flops:
        model.eval()(batch)
    ms = 0.05 + flops.get_total_flops() / 1e6
    return LatencyStats(ms, ms, ms, 0.0, ms, batch_size, threads, repeats)


def _search(task, out, monkeypatch, slower: float, n_trials: int = 8):
    """A latency search on a machine whose timings the latency model fits (:func:`_clock`), but
    that runs every candidate ``slower`` times the model's prediction once it is built."""
    for module in (prepare_module, latency_table_module, latency_model_module):
        monkeypatch.setattr(module, "measure_latency", _clock)

    def timed(ctx, policy):
        modelled = ctx.latency_model.predict_policy(ctx.cost_model, policy)
        return slower * modelled, modelled

    monkeypatch.setattr(objective_module, "timed_policy", timed)
    return search(
        task,
        "latency=0.5",
        space=SPACE,
        n_trials=n_trials,
        out=out,
        progress=False,
        options=SearchOptions(latency_batch_size=512),
    )


def test_confirmed_candidates_are_timed_and_correct_the_latency_model(
    conv_task, tmp_path, monkeypatch
):
    result = _search(conv_task, tmp_path / "run", monkeypatch, SLOWER)
    aim = result.context.limits["latency"]
    trials = result.study.get_trials(states=[TrialState.COMPLETE])
    candidates = [t for t in trials if "recover_of" not in t.user_attrs]
    confirmed = [t for t in candidates if t.user_attrs["fidelity"] == "confirmed"]
    assert len(confirmed) >= 4
    for trial in confirmed:  # checked by its timing, against the aim
        attrs = trial.user_attrs
        assert attrs["latency_measured_ms"] == pytest.approx(SLOWER * attrs["latency_modelled_ms"])
        assert attrs["costs"]["latency_ms"] == attrs["latency_measured_ms"]
        assert trial.constraints["latency"] == pytest.approx(attrs["latency_measured_ms"] / aim - 1)
    untimed = candidates[: confirmed[0].number + 1]  # nothing timed before them
    assert {t.user_attrs["latency_correction"] for t in untimed} == {1.0}
    later = [t for t in candidates if t.number > confirmed[2].number]
    assert later and all(t.user_attrs["latency_correction"] == SLOWER for t in later)
    for trial in later:  # fitted by the corrected model: a confirmed one is timed within the aim
        if trial.user_attrs["fidelity"] == "confirmed":
            assert trial.constraints["latency"] <= 0
    by_number = {t.number: t for t in trials}
    recovered = [t for t in trials if "recover_of" in t.user_attrs]
    assert recovered
    for trial in recovered:  # the same widths as its candidate: its timing
        latency = trial.user_attrs["costs"]["latency_ms"]
        source = by_number[trial.user_attrs["recover_of"]]
        assert latency == source.user_attrs["latency_measured_ms"]
        assert trial.constraints["latency"] == pytest.approx(latency / aim - 1) and latency <= aim
    assert {"latency_modelled_ms", "latency_measured_ms"} <= set(result.trials.columns)


def test_a_machine_far_slower_than_the_model_shrinks_the_candidates_that_follow(
    conv_task, tmp_path, monkeypatch
):
    result = _search(conv_task, tmp_path / "run", monkeypatch, 100.0, n_trials=10)
    aim = result.context.limits["latency"]
    candidates = [
        t
        for t in result.study.get_trials(states=[TrialState.COMPLETE])
        if "recover_of" not in t.user_attrs
    ]
    confirmed = [t for t in candidates if t.user_attrs["fidelity"] == "confirmed"]
    first = confirmed[0]
    assert first.user_attrs["latency_modelled_ms"] > aim / 2  # fitted up to the aim, as modelled
    assert all(t.constraints["latency"] > 0 for t in confirmed[:3])  # timed far over: infeasible
    later = [t for t in candidates if t.number > confirmed[2].number]
    assert later and {t.user_attrs["latency_correction"] for t in later} == {2.0}  # bounded
    for trial in later:  # fitted to twice the model's latency: half the aim, as modelled
        attrs = trial.user_attrs
        if attrs["fidelity"] == "confirmed":
            assert attrs["latency_modelled_ms"] <= aim / 2 * (1 + 1e-9)
    recovered = result.trials[result.trials.recover_of.notna()]
    assert not recovered.recover_of.isin([t.number for t in confirmed[:3]]).any()
