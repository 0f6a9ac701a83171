"""The comparison benchmark on tiny tasks: every method runs, meets its budget, the tables appear, runs resume."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import pytest
import torch

from benchmarks.__main__ import main
from benchmarks._context import RunSettings
from benchmarks._matching import BudgetUnreachable, bisect_knob, erk_densities
from benchmarks._runner import BenchError
from benchmarks._tables import MEANS, aggregate
from benchmarks.compare import BenchConfig, TaskPlan, estimate_seconds, full, quick, run
from benchmarks.methods import METHOD_NAMES

BUDGETS = ("params=0.5", "params=0.3")
UNSTRUCTURED = ("torch-global-l1", "lamp", "erk")


TINY_SETTINGS = RunSettings(
    epochs=0.3, trials=3, space="quick", latency_rounds=2, latency_repeats=5
)


def _tiny(out, **changes) -> BenchConfig:
    config = BenchConfig(
        tasks=(TaskPlan("digits-mlp", BUDGETS),),
        seeds=(0,),
        defaults=TINY_SETTINGS,
        out=out,
    )
    return replace(config, **changes)


def _rows(out, task="digits-mlp") -> dict[tuple, dict]:
    rows = [json.loads(p.read_text()) for p in sorted((out / "raw" / task).glob("*/*/seed*.json"))]
    return {(r["budget"], r["method"]): r for r in rows}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    torch.set_num_threads(
        1
    )  # tiny models: one thread is fastest; the runner pins it for every cell
    start = time.perf_counter()
    paths = run(_tiny(out), progress=False)
    return out, paths, time.perf_counter() - start


# ----------------------------------------------------------------------------- matching and ERK


def test_bisection_finds_the_cheapest_knob_that_meets_the_limit_from_either_side():
    falling = bisect_knob(lambda x: 1.0 - x, 0.25, low=0.0, high=0.99, tol=1e-4)
    assert 0.75 <= falling.knob < 0.7501 and falling.cost <= 0.25
    rising = bisect_knob(lambda x: x * x, 0.25, low=0.0, high=1.0, increasing=True, tol=1e-4)
    assert 0.4999 < rising.knob <= 0.5 and rising.cost <= 0.25
    steps = bisect_knob(lambda x: 1.0 - int(x * 10) / 10, 0.35, low=0.0, high=0.99, tol=1e-4)
    assert 0.7 <= steps.knob < 0.7001 and steps.cost == pytest.approx(0.3)
    # a pruner that skips a layer it would empty: the far end costs more, the match is still the boundary
    skipping = bisect_knob(lambda x: 1.0 - x if x < 0.9 else 1.0, 0.5, low=0.0, high=0.99, tol=1e-3)
    assert 0.5 <= skipping.knob < 0.501 and skipping.probes <= 20


def test_bisection_keeps_the_dense_end_when_it_already_fits_and_refuses_what_cannot_fit():
    assert bisect_knob(lambda x: 0.1, 0.25, low=0.0, high=0.99).knob == 0.0
    with pytest.raises(BudgetUnreachable, match="lowest cost is 0.9") as info:
        bisect_knob(lambda x: 0.9, 0.25, low=0.0, high=0.99)
    assert info.value.best_cost == 0.9


def test_erk_densities_follow_sum_over_product_and_cap_at_one():
    densities = erk_densities(
        {"a": (4, 4), "b": (16, 4)}, 0.4
    )  # raw scores 0.5 and 0.3125, scale 8/7
    assert densities["a"] == pytest.approx(4 / 7) and densities["b"] == pytest.approx(2.5 / 7)
    assert 16 * densities["a"] + 64 * densities["b"] == pytest.approx(0.4 * 80)
    capped = erk_densities(
        {"small": (2, 2), "big": (100, 100)}, 0.5
    )  # small would be 24.5: kept dense
    assert capped == {"small": 1.0, "big": pytest.approx(4998 / 10000)}
    conv = erk_densities({"conv": (8, 4, 3, 3), "fc": (10, 8)}, 1.0)
    assert conv == {"conv": 1.0, "fc": 1.0}
    with pytest.raises(ValueError, match="'density' parameter"):
        erk_densities({"a": (4, 4)}, 0.0)


def _row(method, budget, seed, metric, fraction, status="ok", **extra):
    base = {"method": method, "budget": budget, "seed": seed, "status": status}
    if status != "ok":
        return {**base, "reason": "boom"}
    costs = dict.fromkeys(MEANS, 1.0)
    return {**base, **costs, "test_metric": metric, "fractions": {"params": fraction}, **extra}


def test_aggregation_takes_mean_and_std_over_seeds_and_repeats_reference_rows():
    rows = [
        _row("dense", None, 0, 0.95, 1.0),
        _row("lamp", "params=0.5", 0, 0.90, 0.49, knob=0.5, probes=10, knob_name="global sparsity"),
        _row("lamp", "params=0.5", 1, 0.92, 0.50, knob=0.6, probes=12, knob_name="global sparsity"),
        _row("lamp", "params=0.5", 2, 0.94, 0.51, knob=0.7, probes=14, knob_name="global sparsity"),
        _row("erk", "params=0.5", 0, 0.0, 0.0, status="failed"),
        _row("erk", "params=0.5", 1, 0.80, 0.40, knob=0.3, probes=9),
        _row("lamp", "params=0.3", 0, 0.70, 0.30, knob=0.9, probes=11),
    ]
    frame = aggregate(rows, ["params=0.5", "params=0.3"], ["dense", "lamp", "erk"]).set_index(
        ["budget", "method"]
    )
    lamp = frame.loc[("params=0.5", "lamp")]
    assert (
        lamp.seeds == 3
        and lamp.test_metric_mean == pytest.approx(0.92)
        and lamp.test_metric_std == pytest.approx(0.02)
    )
    assert (
        lamp.cost_fraction == pytest.approx(0.5)
        and lamp.met == "2/3"
        and lamp.note == "global sparsity 0.6 (12 probes)"
    )
    erk = frame.loc[("params=0.5", "erk")]
    assert (
        erk.status == "partial"
        and erk.seeds == 1
        and erk.met == "1/1"
        and "1 of 2 seeds failed: boom" in erk.note
    )
    assert (
        frame.loc[("params=0.3", "dense")].met == "ref"
        and frame.loc[("params=0.3", "dense")].test_metric_mean == 0.95
    )
    assert ("params=0.3", "erk") not in frame.index  # nothing ran there: no row


# ----------------------------------------------------------------------------- presets


def test_command_line_settings_win_over_the_presets_per_task_ones():
    from benchmarks.compare import configure

    config = configure("full", trials=5, epochs=0.2)
    for plan in config.tasks:
        settings = config.settings(plan)
        assert (settings.trials, settings.epochs, settings.latency_repeats) == (5, 0.2, 20)
    preset = full()
    assert [preset.settings(p).trials for p in preset.tasks] == [12, 6]


def test_presets_cover_the_issue_and_fit_their_time_limits():
    q, f = quick(), full()
    assert [(p.name, p.budgets) for p in q.tasks] == [
        ("fashion-cnn", ("params=0.25", "params=0.1"))
    ]
    assert q.seeds == (0,) and q.settings(q.tasks[0]).epochs == 1.0
    assert estimate_seconds(q)["fashion-cnn"] <= 15 * 60
    assert [(p.name, p.budgets) for p in f.tasks] == [
        ("fashion-cnn", ("params=0.5", "params=0.25", "params=0.1", "params=0.05")),
        ("fashion-resnet", ("macs=0.5", "macs=0.25", "latency=0.5")),
    ]
    assert len(f.seeds) == 3
    assert f.methods_of(f.tasks[0]) == tuple(m for m in METHOD_NAMES if m != "autoprune-nosens")
    assert sum(estimate_seconds(f).values()) <= 3 * 3600


def test_config_refuses_unknown_methods_absolute_budgets_and_unknown_tasks(tmp_path):
    with pytest.raises(Exception, match="Unknown benchmark method 'magic'"):
        _tiny(tmp_path, methods=("magic",))
    with pytest.raises(BenchError, match="must be a fraction of the dense model"):
        _tiny(tmp_path, tasks=(TaskPlan("digits-mlp", ("params=5000",)),))
    with pytest.raises(BenchError, match="Task 'nope' is not in this benchmark"):
        _tiny(tmp_path).select(tasks=["nope"])


# ----------------------------------------------------------------------------- the tiny run


def test_every_method_gives_a_row_and_every_budgeted_row_meets_its_budget(tiny_run):
    out, _, _ = tiny_run
    rows = _rows(out)
    fixed = [
        m for m in METHOD_NAMES if m in ("dense", "seed-unstructured-50", "seed-structured-50")
    ]
    matched = [m for m in METHOD_NAMES if m not in fixed]
    assert set(rows) == {(None, m) for m in fixed} | {(b, m) for b in BUDGETS for m in matched}
    assert {r["status"] for r in rows.values()} == {"ok"}, [r.get("reason") for r in rows.values()]
    dense = rows[(None, "dense")]["params"]
    assert (
        dense == 17226 and rows[(None, "seed-unstructured-50")]["params"] == 8714
    )  # half of 17,024 weights + 202 biases
    for budget in BUDGETS:
        limit = float(budget.split("=")[1])
        for method in matched:
            row = rows[(budget, method)]
            assert row["met"] and row["params"] <= limit * dense, (budget, method, row["params"])
        for method in UNSTRUCTURED:  # one weight at a time: the match sits right under the limit
            assert rows[(budget, method)]["params"] >= 0.99 * limit * dense, (budget, method)
        for method in ("autoprune", "autoprune-nosens"):
            assert rows[(budget, method)]["trials"] == 3
            assert (
                out
                / "runs"
                / "digits-mlp"
                / f"params{limit:g}"
                / f"{method}-seed0"
                / "final"
                / "model.safetensors"
            ).is_file()
    structured = rows[("params=0.3", "uniform-structured")]
    assert (
        structured["kernel_macs"] < 0.5 * rows[(None, "dense")]["kernel_macs"]
        and structured["speedup_macs"] > 2
    )


def test_the_tables_csv_and_plot_are_written(tiny_run):
    out, paths, _ = tiny_run
    files = paths["digits-mlp"]
    text = files["markdown"].read_text()
    assert "## params <= 0.5 x dense" in text and "## params <= 0.3 x dense" in text
    for method in METHOD_NAMES:
        assert text.count(f"| {method} |") == 2, method
    assert "torch-pruning" in text and "optuna" in text and "batch 64, 1 thread" in text
    assert files["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = files["csv"].read_text().strip().splitlines()
    assert lines[0].startswith("budget,kind,budget_value,method") and len(lines) == 1 + 2 * len(
        METHOD_NAMES
    )


def test_a_second_run_skips_every_finished_cell(tiny_run):
    out, paths, first_seconds = tiny_run
    raw = sorted((out / "raw").rglob("*.json"))
    stamps = {p: p.stat().st_mtime_ns for p in raw}
    markdown = paths["digits-mlp"]["markdown"].read_text()
    start = time.perf_counter()
    again = run(_tiny(out), progress=False)
    assert time.perf_counter() - start < max(10.0, first_seconds / 2)
    assert {p: p.stat().st_mtime_ns for p in sorted((out / "raw").rglob("*.json"))} == stamps
    assert again["digits-mlp"]["markdown"].read_text() == markdown


def test_results_made_with_other_settings_are_not_mixed_in(tiny_run):
    out, _, _ = tiny_run
    with pytest.raises(BenchError, match=r"epochs 0.3 -> 0.5"):
        run(_tiny(out, defaults=replace(TINY_SETTINGS, epochs=0.5)), progress=False)


def test_methods_that_cannot_meet_a_budget_say_so_and_structured_ones_handle_residuals(
    conv_task, conv_dense, tmp_path
):
    torch.set_num_threads(1)
    config = BenchConfig(
        tasks=(TaskPlan(conv_task, ("macs=0.5", "latency=0.5")),),
        seeds=(0,),
        methods=("torch-global-l1", "erk", "tp-global-taylor"),
        defaults=RunSettings(epochs=0.2, latency_rounds=2, latency_repeats=5),
        out=tmp_path,
    )
    run(config, progress=False)
    rows = _rows(tmp_path, "digits-conv")
    for method in ("torch-global-l1", "erk"):
        assert rows[("latency=0.5", method)]["status"] == "n/a"
        assert "cannot meet latency budgets" in rows[("latency=0.5", method)]["reason"]
    for method in ("torch-global-l1", "erk", "tp-global-taylor"):
        row = rows[("macs=0.5", method)]
        assert row["status"] == "ok" and row["met"] and row["fractions"]["macs"] <= 0.5
    assert (
        rows[("macs=0.5", "tp-global-taylor")]["kernel_macs"]
        < rows[("macs=0.5", "erk")]["kernel_macs"]
    )
    assert rows[("latency=0.5", "tp-global-taylor")]["status"] in (
        "ok",
        "n/a",
    )  # tiny model: latency is noise
    text = (tmp_path / "digits-conv.md").read_text()
    assert (
        "n/a: cannot meet latency budgets (sparse weights do not make dense CPU kernels faster)"
        in text
    )


def test_the_command_line_estimates_and_refuses_unknown_tasks(capsys):
    assert main(["compare", "--quick", "--estimate"]) == 0
    printed = capsys.readouterr().out
    assert (
        "fashion-cnn: params=0.25, params=0.1; 11 methods, seeds 0, 1 epoch(s), 8 trials" in printed
    )
    assert "Total: ~" in printed
    assert main(["compare", "--task", "nope", "--estimate"]) == 2
    assert "Task 'nope' is not in this benchmark" in capsys.readouterr().err


def test_versions_are_those_of_the_installed_distributions():
    import importlib.metadata

    from benchmarks._common import versions

    found = versions()
    for dist in ("torch", "torch-pruning", "optuna", "scikit-learn", "numpy"):
        assert found[dist] == importlib.metadata.version(dist)
    assert found["python"].count(".") == 2
