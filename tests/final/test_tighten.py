"""Under a latency budget, the front's most accurate candidate measured just over is narrowed to fit."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import autoprune.budgets._latency_model as latency_model_module
import autoprune.budgets._latency_table as latency_table_module
import autoprune.final._choose as choose_module
import autoprune.final._tighten as tighten_module
import autoprune.search._objective as objective_module
import autoprune.search._prepare as prepare_module
from autoprune.final import finalize
from autoprune.final._tighten import tightened
from autoprune.introspect import LatencyStats
from autoprune.policy import LayerPolicy, Policy
from autoprune.search import SearchOptions, front_of, search

SPACE = {
    "granularities": ["structured"],
    "criteria": ["l1"],
    "schedules": ["one-shot"],
    "levels": [1.0, 0.5],
    "recovery": {"epochs": 0.1, "top": 1},
    "finetune": {"lr": 1e-3, "final_epochs": 0.0},
    "sensitivity": {"structured_grid": [0.5, 0.9], "tolerance": 1.0, "val_items": 300},
}


def _flop_ms(model, example_input, batch_size: int) -> float:
    """A deterministic machine: a forward pass takes 0.05 ms plus a microsecond per 1,000 FLOPs."""
    batch = example_input[:1].expand(batch_size, *example_input.shape[1:])
    with torch.no_grad(), FlopCounterMode(display=False) as flops:
        model.eval()(batch)
    return 0.05 + flops.get_total_flops() / 1e6


def _clock(model, example_input, *, batch_size=1, threads=1, repeats=1, warmup=0):
    ms = _flop_ms(model, example_input, batch_size)
    return LatencyStats(ms, ms, ms, 0.0, ms, batch_size, threads, repeats)


def _final_machine(slower: float):
    """The final step's side-by-side timing on a machine that runs pruned models ``slower``."""

    def side_by_side(models, example_input, *, rounds=5, batch_size=64, threads=1, repeats=30):
        out = {}
        for name, model in models.items():
            ms = _flop_ms(model, example_input, batch_size) * (1.0 if name == "dense" else slower)
            out[name] = {
                "median_ms": ms,
                "min_ms": ms,
                "max_ms": ms,
                "rounds": rounds,
                "batch_size": batch_size,
                "threads": threads,
            }
        return out

    return side_by_side


@pytest.fixture(scope="module")
def latency_run(conv_task, tmp_path_factory):
    """A latency search whose timings the latency model fits exactly."""
    patch = pytest.MonkeyPatch()
    for module in (prepare_module, latency_table_module, latency_model_module):
        patch.setattr(module, "measure_latency", _clock)

    def timed(ctx, policy):
        modelled = ctx.latency_model.predict_policy(ctx.cost_model, policy)
        return modelled, modelled

    patch.setattr(objective_module, "timed_policy", timed)
    try:
        yield search(
            conv_task,
            "latency=0.5",
            space=SPACE,
            n_trials=6,
            out=tmp_path_factory.mktemp("tighten") / "run",
            progress=False,
            options=SearchOptions(latency_batch_size=512),
        )
    finally:
        patch.undo()


def _finalize_on(run, slower: float, monkeypatch):
    monkeypatch.setattr(choose_module, "side_by_side_latency", _final_machine(slower))
    return finalize(run, top=1, epochs=0, progress=False)


def test_tightened_narrows_every_kept_share_and_leaves_nm_alone():
    local = Policy(
        layers={
            "a": LayerPolicy("structured", channel_ratio=0.0),
            "b": LayerPolicy("structured", channel_ratio=0.6),
            "c": LayerPolicy("nm", nm="2:4"),
        }
    )
    narrow = tightened(local, 0.25)
    assert narrow.layers["a"].channel_ratio == pytest.approx(0.25)
    assert narrow.layers["b"].channel_ratio == pytest.approx(0.7)  # 0.4 kept -> 0.3
    assert narrow.layers["c"] == local.layers["c"]
    ranked = Policy.global_ranking(["a", "b"], 0.5, granularity="structured")
    assert tightened(ranked, 0.2).global_sparsity == pytest.approx(0.6)
    assert tightened(local, 0.0) == local


def test_a_candidate_measured_just_over_is_narrowed_rather_than_dropped(latency_run, monkeypatch):
    front = front_of(latency_run.trials)
    best = int(front.sort_values("val_metric").number.iloc[-1])
    limit = latency_run.context.limits["latency"] / 0.97
    searched = front[front.number == best].iloc[0]
    slower = 1.08 * limit / searched.latency_ms  # it measures 8% over the budget now
    summary = _finalize_on(latency_run, slower, monkeypatch)
    rows = {r.number: r for r in summary.front_latency}
    assert summary.chosen_trial == best  # not the faster, less accurate level
    chosen = rows[best]
    assert 0 < chosen.tightened <= tighten_module.MOST
    assert chosen.met and chosen.measured_ms <= 0.97 * chosen.limit_ms  # under the aim
    assert {r.number for r in summary.front_latency if r.tightened} == {best}
    latency = [c for c in summary.budget_checks if c.kind == "latency"]
    assert latency and all(c.met for c in latency)  # the saved model meets it too
    assert summary.final.macs < searched.macs  # narrower than the searched candidate


def test_a_candidate_far_over_is_not_narrowed_past_the_bound(latency_run, monkeypatch):
    summary = _finalize_on(latency_run, 5.0, monkeypatch)  # no narrowing within MOST fits
    rows = summary.front_latency
    assert not any(r.tightened for r in rows)
    assert not any(r.met for r in rows)
    fastest = min(rows, key=lambda r: r.measured_ms)
    assert summary.chosen_trial == fastest.number  # the closest to the budget, as before
