"""The comparison benchmark on tiny tasks: both regimes, matched budgets, honest statistics, resumable runs."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

import benchmarks.compare as compare_module
from autoprune.final import FrontLatency
from autoprune.search import load_space
from autoprune.tasks import get_task
from benchmarks.__main__ import main
from benchmarks._context import BenchTask, RunSettings
from benchmarks._matching import BudgetUnreachable, bisect_knob, erk_densities, owl_densities
from benchmarks._runner import BenchError, in_regime
from benchmarks._search_methods import narrowed_by, oneshot_order, provenance
from benchmarks._stats import compare, summarize, welch_p
from benchmarks._tables import MEANS, aggregate, headline_markdown, headlines
from benchmarks.compare import BenchConfig, TaskPlan, estimate_seconds, full, quick, run
from benchmarks.methods import METHOD_NAMES, get_method

BUDGETS = ("params=0.5", "params=0.3")
UNSTRUCTURED = ("uniform", "global-magnitude", "lamp", "erk", "owl")
TRANSFORMER_ONLY = ("global-units-l1", "global-units-taylor")
TINY_SETTINGS = RunSettings(
    epochs=0.3, trials=3, space="quick", latency_rounds=2, latency_repeats=5
)


def _tiny(out, **changes) -> BenchConfig:
    config = BenchConfig(
        tasks=(TaskPlan("digits-mlp", BUDGETS),),
        methods=tuple(m for m in METHOD_NAMES if m != "modelopt-fastnas"),
        seeds=(0, 1),
        defaults=TINY_SETTINGS,
        out=out,
    )
    return replace(config, **changes)


def _rows(out, task="digits-mlp") -> dict[tuple, dict]:
    rows = [json.loads(p.read_text()) for p in sorted((out / "raw" / task).glob("*/*/seed*.json"))]
    return {(r["budget"], r["method"], r["seed"]): r for r in rows}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    torch.set_num_threads(
        1
    )  # tiny models: one thread is fastest; the runner pins it for every cell
    start = time.perf_counter()
    paths = run(_tiny(out), progress=False)
    return out, paths, time.perf_counter() - start


# ----------------------------------------------------------------------------- matching, ERK, OWL


def test_bisection_finds_the_cheapest_knob_that_meets_the_limit_from_either_side():
    falling = bisect_knob(lambda x: 1.0 - x, 0.25, low=0.0, high=0.99, tol=1e-4)
    assert 0.75 <= falling.knob < 0.7501 and falling.cost <= 0.25
    rising = bisect_knob(lambda x: x * x, 0.25, low=0.0, high=1.0, increasing=True, tol=1e-4)
    assert 0.4999 < rising.knob <= 0.5 and rising.cost <= 0.25
    skipping = bisect_knob(lambda x: 1.0 - x if x < 0.9 else 1.0, 0.5, low=0.0, high=0.99, tol=1e-3)
    assert 0.5 <= skipping.knob < 0.501 and skipping.probes <= 20
    assert bisect_knob(lambda x: 0.1, 0.25, low=0.0, high=0.99).knob == 0.0
    with pytest.raises(BudgetUnreachable, match="lowest cost is 0.9"):
        bisect_knob(lambda x: 0.9, 0.25, low=0.0, high=0.99)


def test_erk_densities_follow_sum_over_product_and_cap_at_one():
    densities = erk_densities({"a": (4, 4), "b": (16, 4)}, 0.4)
    assert densities["a"] == pytest.approx(4 / 7) and densities["b"] == pytest.approx(2.5 / 7)
    capped = erk_densities({"small": (2, 2), "big": (100, 100)}, 0.5)
    assert capped == {"small": 1.0, "big": pytest.approx(4998 / 10000)}


def test_owl_gives_layers_with_more_outliers_more_weights_around_the_mean_density():
    densities = owl_densities({"a": 0.001, "b": 0.004, "c": 0.010}, 0.3, lam=0.08)
    assert densities["a"] < densities["b"] < densities["c"]
    assert densities["c"] - densities["a"] == pytest.approx(0.16)
    assert sum(densities.values()) / 3 == pytest.approx(0.3)
    assert owl_densities({"a": 0.01, "b": 0.01}, 0.2) == {"a": 0.2, "b": 0.2}
    extreme = owl_densities({"a": 0.0, "b": 1.0}, 0.01)  # the spread shrinks with the density
    assert extreme["a"] == pytest.approx(0.01 - 0.08 / 30) and extreme["b"] == pytest.approx(
        0.01 + 0.08 / 30
    )


# ----------------------------------------------------------------------------- statistics


def test_confidence_intervals_and_welch_tests_match_scipy():
    from scipy import stats

    values = [0.91, 0.93, 0.92, 0.95, 0.90]
    s = summarize(values)
    low, high = stats.t.interval(0.95, 4, loc=s.mean, scale=stats.sem(values))
    assert s.ci95 == (pytest.approx(low), pytest.approx(high)) and s.n == 5
    other = [0.89, 0.90, 0.88, 0.90, 0.87]
    assert welch_p(values, other) == pytest.approx(
        stats.ttest_ind(values, other, equal_var=False).pvalue
    )
    assert compare(values, other).verdict == "ahead" and compare(other, values).verdict == "behind"


def test_a_difference_inside_noise_or_without_seeds_is_level():
    noisy = compare([0.90, 0.94, 0.92], [0.91, 0.93, 0.915])
    assert noisy.verdict == "level" and noisy.p_value > 0.05
    single = compare([0.95], [0.90])
    assert single.verdict == "level" and single.p_value is None
    assert summarize([0.9]).ci95 == (0.9, 0.9)
    assert compare([0.9, 0.9], [0.8, 0.8]).verdict == "ahead"  # deterministic and different
    assert compare([0.9, 0.9], [0.9, 0.9]).verdict == "level"


def _row(method, budget, seed, oneshot, recovered, fraction, status="ok", **extra):
    base = {"method": method, "budget": budget, "seed": seed, "status": status}
    if status != "ok":
        return {**base, "reason": "boom"}
    costs = dict.fromkeys(MEANS, 1.0)
    return {
        **base,
        **costs,
        "oneshot_metric": oneshot,
        "recovered_metric": recovered,
        "fractions": {"params": fraction},
        "commit": "abc",
        **extra,
    }


def test_aggregation_gives_both_regimes_with_intervals_and_autoprunes_verdicts():
    rows = [_row("dense", None, s, 0.95, 0.955 + 0.001 * s, 1.0) for s in range(3)]
    rows += [_row("lamp", "params=0.5", s, 0.80 + 0.01 * s, 0.90 + 0.01 * s, 0.5) for s in range(3)]
    rows += [
        _row("autoprune", "params=0.5", s, 0.85 + 0.001 * s, 0.91 + 0.01 * s, 0.49, provenance=p)
        for s, p in enumerate(["seed", "sampler", "sampler"])
    ]
    rows += [_row("erk", "params=0.5", 0, 0, 0, 0, status="failed")]
    frame = aggregate(rows, ["params=0.5"], ["dense", "lamp", "erk", "autoprune"])
    one = frame[frame.regime == "one-shot"].set_index("method")
    rec = frame[frame.regime == "recovery"].set_index("method")
    assert one.loc["lamp"].test_metric_mean == pytest.approx(0.81)
    assert one.loc["lamp"].autoprune_verdict == "ahead" and one.loc["lamp"].autoprune_p < 0.05
    assert rec.loc["lamp"].autoprune_verdict == "level"  # 0.01 apart with spread 0.01: noise
    assert (
        rec.loc["dense"].test_metric_mean == pytest.approx(0.956) and rec.loc["dense"].met == "ref"
    )
    assert one.loc["autoprune"].provenance == "1 seed, 2 sampler"
    assert one.loc["autoprune"].met == "3/3" and one.loc["autoprune"].commits == "abc"
    assert one.loc["erk"].seeds == 0 and "failed: boom" in one.loc["erk"].note
    table = headlines(frame).set_index("regime")
    assert table.loc["one-shot"].best_other == "lamp"
    assert table.loc["one-shot"].verdict.startswith("ahead (p ")
    assert table.loc["recovery"].verdict.startswith("level (p ")
    assert "| params=0.5 |" in headline_markdown(frame, "recovery")


def test_the_one_shot_table_reads_a_searchs_own_one_shot_pick_and_recovery_its_pick():
    lamp = [_row("lamp", "params=0.5", s, 0.80, 0.90 + 0.001 * s, 0.5) for s in range(3)]
    pick = {
        "oneshot_metric": 0.86,
        "fractions": {"params": 0.48},
        "params": 7.0,
        "provenance": "sampler",
    }
    search = [
        _row("autoprune", "params=0.5", s, 0.70 + 0.001 * s, 0.91, 0.49, provenance="seed")
        | {"oneshot_pick": {**pick, "oneshot_metric": 0.86 + 0.001 * s}}
        for s in range(3)
    ]
    frame = aggregate(lamp + search, ["params=0.5"], ["lamp", "autoprune"])
    one = frame[frame.regime == "one-shot"].set_index("method")
    rec = frame[frame.regime == "recovery"].set_index("method")
    assert one.loc["autoprune"].test_metric_mean == pytest.approx(0.861)
    assert one.loc["autoprune"].params == 7.0 and one.loc["autoprune"].provenance == "3 sampler"
    assert one.loc["autoprune"].cost_fraction == pytest.approx(0.48)
    assert one.loc["lamp"].autoprune_verdict == "ahead"  # 0.861 against 0.80, not 0.701
    assert rec.loc["autoprune"].params == 1.0 and rec.loc["autoprune"].provenance == "3 seed"


def test_a_pick_narrowed_to_a_latency_budget_says_so_in_its_regime_only():
    front = [
        FrontLatency(3, 1.0, 0.9, 0.29, 1.0, True, tightened=0.05),
        FrontLatency(4, 1.0, 0.5, 0.15, 1.0, True),
    ]
    assert narrowed_by(SimpleNamespace(chosen_trial=3, front_latency=front)) == 0.05
    assert narrowed_by(SimpleNamespace(chosen_trial=4, front_latency=front)) == 0.0
    assert narrowed_by(SimpleNamespace(chosen_trial=3, front_latency=None)) == 0.0
    search = [
        _row("autoprune", "params=0.5", s, 0.70, 0.91 + 0.001 * s, 0.49)
        | {"choice": "structured", "narrowed": 0.05 * (s == 0)}
        | {"oneshot_pick": {"oneshot_metric": 0.8, "narrowed": 0.0}}
        for s in range(3)
    ]
    frame = aggregate(search, ["params=0.5"], ["autoprune"]).set_index("regime")
    assert frame.loc["recovery"].note == (
        "structured (narrowed to measure under the budget in 1 of 3 seeds, widths times 0.95 at most)"
    )
    assert frame.loc["one-shot"].note == "structured"


def test_the_winning_trials_provenance_comes_from_the_trials_table():
    assert provenance({"number": 0, "seed": "uniform"}) == "seed"
    assert provenance({"number": 5, "seed": float("nan")}) == "startup"
    assert provenance({"number": 12, "seed": ""}) == "sampler"
    assert provenance({"number": 1, "seed": "", "provenance": "sampler"}) == "sampler"


# ----------------------------------------------------------------------------- presets


def test_presets_cover_the_issue_and_fit_their_time_limits():
    q, f = quick(), full()
    assert [p.name for p in f.tasks] == ["fashion-cnn", "fashion-resnet", "minilm-fidelity"]
    assert [p.budgets for p in f.tasks] == [
        ("params=0.1", "params=0.05", "params=0.02", "params=0.01"),
        ("macs=0.5", "macs=0.25", "latency=0.5", "latency=0.3"),
        ("params=0.5", "params=0.3"),
    ]
    assert len(f.seeds) >= 5 and q.seeds == (0,)
    for plan in q.tasks:  # two cells per task: two budgets, or one budget and two methods
        matched = [m for m in q.methods_of(plan) if m != "dense"]
        assert len(plan.budgets) == 2 or (len(plan.budgets) == 1 and len(matched) == 2)
    assert sum(estimate_seconds(q).values()) <= 15 * 60
    # the full run is planned at about 5.3 h (its minilm part measured at 119 min): the 4 h aim
    # does not hold with 100/30/10 search candidates and the searches' own recoveries
    assert sum(estimate_seconds(f).values()) <= 5.5 * 3600
    assert f.settings(f.tasks[0]).calibration_images <= 2000
    cnn = f.methods_of(f.tasks[0])
    for method in ("dense", *UNSTRUCTURED, "tp-global-l1", "tp-global-taylor", "autoprune"):
        assert method in cnn
    assert {"global-units-l1", "global-units-taylor"} <= set(f.methods_of(f.tasks[2]))


def test_config_refuses_unknown_methods_absolute_budgets_and_unknown_tasks(tmp_path):
    with pytest.raises(Exception, match="Unknown benchmark method 'magic'"):
        _tiny(tmp_path, methods=("magic",))
    with pytest.raises(BenchError, match="must be a fraction of the dense model"):
        _tiny(tmp_path, tasks=(TaskPlan("digits-mlp", ("params=5000",)),))
    with pytest.raises(BenchError, match="Task 'nope' is not in this benchmark"):
        _tiny(tmp_path).select(tasks=["nope"])


# ----------------------------------------------------------------------------- the tiny run


def test_every_method_gives_both_regimes_and_meets_its_budget(tiny_run):
    out, _, _ = tiny_run
    rows = _rows(out)
    for seed in (0, 1):
        dense = rows[(None, "dense", seed)]
        assert dense["status"] == "ok" and dense["fractions"]["params"] == 1.0
        for budget in BUDGETS:
            limit = float(budget.split("=")[1])
            for method in TRANSFORMER_ONLY:
                assert rows[(budget, method, seed)]["status"] == "n/a"
            for method in [*UNSTRUCTURED, "tp-global-l1", "uniform-structured", "autoprune"]:
                row = rows[(budget, method, seed)]
                assert row["status"] == "ok", (method, row.get("reason"))
                assert row["met"] and row["params"] <= limit * dense["params"]
                assert 0 <= row["oneshot_metric"] <= 1 and 0 <= row["recovered_metric"] <= 1
                assert row["params_after_recovery"] <= row["params"]  # recovery keeps zeros zero
                assert row["commit"] and row["wall_seconds"] > 0 and row["recovery_steps"] > 0
            for (
                method
            ) in UNSTRUCTURED:  # one weight at a time: the match sits right under the limit
                assert rows[(budget, method, seed)]["params"] >= 0.99 * limit * dense["params"]
            structured = rows[(budget, "uniform-structured", seed)]
            assert structured["macs"] < dense["macs"] and structured["promise_kept"] > 0
            sparse = rows[(budget, "lamp", seed)]
            assert sparse["macs"] == dense["macs"] and sparse["sparse_macs"] < dense["macs"]
            assert sparse["flops"] == 2 * sparse["macs"]  # an MLP: every FLOP is a layer's
    search = rows[("params=0.3", "autoprune", 0)]
    assert search["provenance"] in ("seed", "startup", "sampler") and search["trials"] == 3
    assert search["sensitivity_charged"] >= search["sensitivity_seconds"] - 1e-9
    assert search["cell_seconds"] >= search["search_seconds"] + search["recovery_seconds"]


def test_the_one_shot_regime_reads_the_searchs_best_confirmed_candidate(tiny_run):
    out, _, _ = tiny_run
    searches = [r for r in _rows(out).values() if r["method"] == "autoprune"]
    assert len(searches) == 4
    for row in searches:
        trials = pd.read_csv(Path(row["run_dir"]) / "trials.csv")
        best = oneshot_order(trials)[0]
        one = in_regime(row, "one-shot")
        assert one["chosen_trial"] == best, (row["budget"], row["seed"])
        assert one["fractions"]["params"] <= row["budget_value"] and row["met"]
        if "oneshot_pick" in row:  # another model than the pick for recovery, tested on its own
            assert best != row["chosen_trial"] and 0 <= one["oneshot_metric"] <= 1


def test_a_seed_independent_method_matches_once_and_charges_every_seed(tiny_run):
    out, _, _ = tiny_run
    rows = _rows(out)
    first, second = rows[("params=0.3", "lamp", 0)], rows[("params=0.3", "lamp", 1)]
    assert first["knob"] == second["knob"] and first["oneshot_metric"] == second["oneshot_metric"]
    match = out / "runs" / "digits-mlp" / "params0.3" / "lamp-match.json"
    found = json.loads(match.read_text())["seconds"]  # what finding the shared match took
    for row in (first, second):  # both pay it: the second seed is charged what the first spent
        assert row["wall_seconds"] >= found - 0.01
    # recovery depends on the seed: the data order differs
    assert first["recovered_metric"] != second["recovered_metric"] or first["knob"] == 0


def test_the_tables_csv_and_plot_are_written(tiny_run):
    out, paths, _ = tiny_run
    files = paths["digits-mlp"]
    text = files["markdown"].read_text()
    for heading in ("## one-shot", "## recovery", "### recovery: params <= 0.3 x dense"):
        assert heading in text
    assert "Welch" in text and "FlopCounterMode" in text and "Commits: " in text
    assert files["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = files["csv"].read_text().strip().splitlines()
    assert lines[0].startswith("regime,budget,kind,budget_value,method")


def test_a_second_run_skips_every_finished_cell(tiny_run, monkeypatch):
    out, paths, _ = tiny_run
    stamps = {p: p.stat().st_mtime_ns for p in sorted((out / "raw").rglob("*.json"))}
    markdown = paths["digits-mlp"]["markdown"].read_text()

    def must_not_run(*args, **kwargs):
        raise AssertionError(f"a finished cell ran again: {args[1:]}")

    monkeypatch.setattr(compare_module, "run_cell", must_not_run)
    again = run(_tiny(out), progress=False)
    assert {p: p.stat().st_mtime_ns for p in sorted((out / "raw").rglob("*.json"))} == stamps
    assert again["digits-mlp"]["markdown"].read_text() == markdown


def test_results_made_with_other_settings_are_not_mixed_in(tiny_run):
    out, _, _ = tiny_run
    with pytest.raises(BenchError, match=r"epochs 0.3 -> 0.5"):
        run(_tiny(out, defaults=replace(TINY_SETTINGS, epochs=0.5)), progress=False)


def test_a_run_keeps_its_dense_checkpoint_and_never_mixes_in_rows_from_another(tiny_run, tmp_path):
    out, paths, _ = tiny_run
    kept = sorted((out / "dense").glob("digits-mlp-seed0-*.safetensors"))
    assert len(kept) == 1  # trained once, into the run's own folder
    digests = {r["dense_digest"] for r in _rows(out).values() if r["status"] == "ok"}
    again = BenchTask(get_task("digits-mlp"), TINY_SETTINGS, dense_dir=out)
    assert again.dense_info["cached"] and digests == {again.dense_digest}
    assert f"weights digest {again.dense_digest}" in paths["digits-mlp"]["markdown"].read_text()
    # rows made from another dense model (trained again elsewhere) are refused, not mixed in
    other = tmp_path / "other"
    shutil.copytree(out / "raw", other / "raw")
    shutil.copytree(out / "dense", other / "dense")
    rows = sorted((other / "raw" / "digits-mlp").glob("*/lamp/seed*.json"))
    stale = json.loads(rows[0].read_text())
    rows[0].write_text(json.dumps({**stale, "dense_digest": "0" * 20}))
    rows[1].unlink()  # one cell to run, so the run opens the task
    with pytest.raises(BenchError, match=r"started from another dense checkpoint .*0{20}"):
        run(_tiny(other), progress=False)


def test_the_searchs_own_recovery_length_is_a_setting_of_search_rows_only(tiny_run):
    out, _, _ = tiny_run
    with pytest.raises(BenchError, match=r"autoprune.*search_recovery_epochs None -> 0.05"):
        run(
            _tiny(out, defaults=replace(TINY_SETTINGS, search_recovery_epochs=0.05)), progress=False
        )
    settings = RunSettings(search_recovery_epochs=0.05)
    assert "search_recovery_epochs" not in settings.relevant(search=False)
    assert settings.relevant(search=True)["search_recovery_epochs"] == 0.05
    method = get_method("autoprune")
    assert method.space("default") == "default"  # the space as it is, by name
    space = method.space("transformer", recovery_epochs=0.05)
    assert space["recovery"] == {"top": 3, "epochs": 0.05, "distill_weight": 1.0}
    assert space["finetune"] == load_space("transformer").to_dict()["finetune"]
    # the full run's search trains its candidates back exactly as long as every method's recovery
    for plan in full().tasks:
        settings = full().settings(plan)
        assert settings.search_recovery_epochs == settings.epochs, plan.name
    assert full().settings(full().tasks[0]).search_recovery_epochs == 0.25


def test_macs_budgets_are_for_structured_methods_only(conv_task, conv_dense, tmp_path):
    torch.set_num_threads(1)
    config = BenchConfig(
        tasks=(TaskPlan(conv_task, ("macs=0.5",)),),
        seeds=(0,),
        methods=("lamp", "tp-global-l1", "modelopt-fastnas"),
        defaults=RunSettings(epochs=0.1, latency_rounds=2, latency_repeats=5),
        out=tmp_path,
    )
    run(config, progress=False)
    rows = _rows(tmp_path, "digits-conv")
    lamp = rows[("macs=0.5", "lamp", 0)]
    assert lamp["status"] == "n/a" and "zeroed weights save no MACs" in lamp["reason"]
    tp = rows[("macs=0.5", "tp-global-l1", 0)]
    assert tp["status"] == "ok" and tp["met"] and tp["fractions"]["macs"] <= 0.5
    assert tp["speedup_macs"] >= 2 and tp["speedup_measured"] > 0
    fastnas = rows[("macs=0.5", "modelopt-fastnas", 0)]
    if (
        fastnas["status"] == "n/a"
    ):  # the optional package (make bench-deps) is missing: the row says so
        assert "nvidia-modelopt is not usable here" in fastnas["reason"]
    else:
        assert fastnas["status"] == "ok" and fastnas["met"], fastnas.get("reason")
        assert fastnas["macs"] <= 0.5 * tp["macs"] / tp["fractions"]["macs"] + 1


def test_the_command_line_estimates_and_refuses_unknown_tasks(capsys):
    assert main(["compare", "--quick", "--estimate"]) == 0
    printed = capsys.readouterr().out
    assert "fashion-cnn: params=0.05, params=0.02;" in printed and "Total: ~" in printed
    assert main(["compare", "--task", "nope", "--estimate"]) == 2
    assert "Task 'nope' is not in this benchmark" in capsys.readouterr().err


def test_a_model_is_timed_when_asked_or_when_it_was_pruned_structurally():
    from autoprune.apply import apply_policy
    from autoprune.policy import Policy
    from benchmarks._context import BenchTask

    ctx = BenchTask(get_task("digits-mlp"), TINY_SETTINGS)
    layers = ["fc1", "fc2"]
    sparse = apply_policy(
        ctx.fresh_dense(), Policy.uniform(layers, 0.5), example_input=ctx.example_input
    )
    narrow = apply_policy(
        ctx.fresh_dense(),
        Policy.uniform(layers, 0.5, granularity="structured"),
        example_input=ctx.example_input,
    )
    assert "latency_ms" not in ctx.measure(sparse.model, latency=None)  # zeroed weights only
    assert "latency_ms" in ctx.measure(sparse.model, latency=True)
    timed = ctx.measure(narrow.model, latency=None)  # a search's structured pick, say
    assert timed["macs"] < ctx.dense_costs.macs and timed["latency_ms"] > 0
    assert timed["speedup_measured"] > 0 and "latency_ms" not in ctx.measure(
        narrow.model, latency=False
    )


def test_a_bisections_probes_share_the_dense_models_taylor_scores(monkeypatch):
    import benchmarks._context as context_module
    from autoprune.policy import Policy
    from autoprune.prune import Calibration, Pruner
    from benchmarks._context import BenchTask

    ctx = BenchTask(get_task("digits-mlp"), TINY_SETTINGS)
    calls = []
    collect = context_module.collect_statistics
    monkeypatch.setattr(
        context_module,
        "collect_statistics",
        lambda *a, **k: calls.append(k["needs"]) or collect(*a, **k),
    )
    probes = [
        Policy.global_ranking(["fc1", "fc2"], amount, granularity="structured", criterion="taylor")
        for amount in (0.3, 0.6)
    ]
    pruned = [ctx.prune_only(policy) for policy in probes]
    assert calls == [{"taylor"}]  # once for both probes
    alone = ctx.fresh_dense()  # the same probe, its statistics collected by the pruner itself
    Pruner(alone, probes[1], calibration=Calibration.from_task(ctx.task)).step()
    assert [p.shape for p in pruned[1].parameters()] == [p.shape for p in alone.parameters()]
    assert all(
        torch.equal(a, b) for a, b in zip(pruned[1].parameters(), alone.parameters(), strict=True)
    )
    assert pruned[0].fc1.out_features > pruned[1].fc1.out_features
