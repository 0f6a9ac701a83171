"""Sensitivity analysis: curves, caching (JSON, never pickle), parallelism, derived caps/tiers/seeds, CLI."""

from __future__ import annotations

import copy

import pandas as pd
import pytest
import torch
from torch import nn

import autoprune
from autoprune.errors import AutopruneError, BudgetError
from autoprune.sensitivity import (
    Sensitivity,
    SensitivityOptions,
    analyse_sensitivity,
    greedy_allocation,
    sensitivity_allocation,
    uniform_allocation,
)

GRID = (0.3, 0.6, 0.9)


def _quiet(cache=False, **options) -> SensitivityOptions:
    """The run options of these tests: no progress bar, no cache unless one is given."""
    return SensitivityOptions(cache=cache, progress=False, **options)


class WithQuietBranch(nn.Module):
    """The trained digits MLP plus a branch whose output is scaled down to almost nothing."""

    def __init__(self):
        super().__init__()
        from autoprune.tasks.models import DigitsMLP

        self.mlp = DigitsMLP()
        self.quiet = nn.Linear(64, 10)

    def forward(self, x):
        return self.mlp(x) + 1e-4 * self.quiet(x)


@pytest.fixture(scope="module")
def crafted(digits_task, digits_dense):
    import dataclasses

    task = dataclasses.replace(digits_task, build_model=WithQuietBranch)
    model = WithQuietBranch()
    model.mlp.load_state_dict(digits_dense.model.state_dict())
    return task, model


def test_curves_are_flat_for_a_layer_that_barely_matters_and_steep_for_one_that_does(
    crafted, tmp_path
):
    task, model = crafted
    sens = analyse_sensitivity(model, task, grid=GRID, options=_quiet(tmp_path))
    ranking = sens.ranking()
    assert list(ranking.layer)[-1] == "quiet"
    quiet = sens.table[sens.table.layer == "quiet"]
    assert quiet["drop"].abs().max() <= 0.003
    steep = sens.table[sens.table.layer == "mlp.fc3"].sort_values("sparsity")["drop"].tolist()
    assert steep[-1] > 0.1 and steep[-1] >= steep[0]  # rises with sparsity
    assert set(sens.table.columns) >= {
        "layer",
        "sparsity",
        "criterion",
        "granularity",
        "metric",
        "loss",
        "drop",
    }


def test_cache_hits_on_a_second_run_and_misses_after_a_weight_changes(
    digits_task, digits_dense, tmp_path
):
    model = copy.deepcopy(digits_dense.model)
    first = analyse_sensitivity(model, digits_task, grid=GRID, options=_quiet(tmp_path))
    assert first.cached_points == 0
    second = analyse_sensitivity(model, digits_task, grid=GRID, options=_quiet(tmp_path))
    assert second.cached_points == second.total_points == 9
    pd.testing.assert_frame_equal(first.table, second.table)
    with torch.no_grad():
        model.fc2.weight[0, 0] += 0.5
    third = analyse_sensitivity(model, digits_task, grid=GRID, options=_quiet(tmp_path))
    assert third.cached_points == 0
    assert third.dense_metric == pytest.approx(first.dense_metric, abs=0.02)


def test_cache_misses_when_the_loss_changes(digits_task, digits_dense, tmp_path):
    import dataclasses

    from torch import nn

    first = analyse_sensitivity(
        digits_dense.model, digits_task, grid=(0.5,), options=_quiet(tmp_path)
    )
    smoothed = dataclasses.replace(digits_task, loss=nn.CrossEntropyLoss(label_smoothing=0.2))
    second = analyse_sensitivity(
        digits_dense.model, smoothed, grid=(0.5,), options=_quiet(tmp_path)
    )
    assert first.cached_points == 0 and second.cached_points == 0
    assert second.table["loss"].iloc[0] != pytest.approx(first.table["loss"].iloc[0])


def test_two_workers_give_the_same_table_as_one(digits_task, digits_dense, tmp_path):
    one = analyse_sensitivity(
        digits_dense.model, digits_task, grid=GRID, options=_quiet(False, n_jobs=1)
    )
    two = analyse_sensitivity(
        digits_dense.model, digits_task, grid=GRID, options=_quiet(False, n_jobs=2)
    )
    pd.testing.assert_frame_equal(one.table, two.table)
    # workers write the cache; a second parallel run reads it back, same table
    for expected_cached in (0, 9):
        run = analyse_sensitivity(
            digits_dense.model, digits_task, grid=GRID, options=_quiet(tmp_path, n_jobs=2)
        )
        assert run.cached_points == expected_cached
        pd.testing.assert_frame_equal(one.table, run.table)


class _WritesMarker:
    """Unpickling this object creates the marker file: proof that a payload ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _legacy_evaluate_point(key, unit, amount, criterion, granularity, seed, state, task):
    """Where a point was computed when a ``joblib.Memory`` cache kept the points (its name)."""


_legacy_evaluate_point.__module__ = "autoprune.sensitivity._analysis"
_legacy_evaluate_point.__name__ = _legacy_evaluate_point.__qualname__ = "evaluate_point"


def _legacy_joblib_outputs(model, task, grid, root):
    """Where a ``joblib.Memory`` cache of this analysis kept its pickled points (output.pkl)."""
    import hashlib
    import json

    import joblib

    from autoprune.sensitivity import weights_digest
    from autoprune.sensitivity._measurement import light_task
    from autoprune.tasks._data import dataset_digest

    light = light_task(task, val_items=2000, train_items=2560, seed=0)
    key = "-".join(
        [
            "2",
            hashlib.sha256(json.dumps(task.identity()).encode()).hexdigest()[:12],
            f"{type(model).__module__}.{type(model).__qualname__}",
            weights_digest(model),
            dataset_digest(light.val_data),
            dataset_digest(light.train_data),
            str(len(light.val_data)),
        ]
    )
    scratch = joblib.Memory(location=str(root.parent / "scratch"), verbose=0)
    memorized = scratch.cache(_legacy_evaluate_point, ignore=["state", "task"])
    points = [("(dense)", 0.0)] + [(u, a) for u in ("fc1", "fc2", "fc3") for a in grid]
    return [
        root.joinpath("joblib", memorized.func_id, args_id, "output.pkl")
        for args_id in (
            memorized._get_args_id(key, u, a, "l1", "unstructured", 0, None, None)
            for u, a in points
        )
    ]


def _damaged_versions(files: list, payload: bytes) -> list[bytes]:
    """One damaged content per cache file, cycling over ways a file goes bad or is replaced."""
    import json

    originals = [f.read_bytes() for f in files]

    def wrong_type(i):
        document = json.loads(originals[i])
        document["row"]["metric"] = "high"
        return json.dumps(document).encode()

    variants = [
        lambda i: originals[i][: len(originals[i]) // 2],  # truncated
        lambda i: payload,  # a pickle where the JSON belongs
        wrong_type,  # a field of the wrong type
        lambda i: originals[(i + 1) % len(files)],  # another point's (valid) file
        lambda i: b"[" * 100_000,  # nested too deeply for the parser
        lambda i: b"\xff\xfe not utf-8",
    ]
    return [variants[i % len(variants)](i) for i in range(len(files))]


def test_a_replaced_or_damaged_cache_file_is_recomputed_never_executed(
    digits_task, digits_dense, tmp_path
):
    import pickle

    cache, marker = tmp_path / "cache", tmp_path / "payload-ran"
    payload = pickle.dumps(_WritesMarker(marker))
    model = digits_dense.model
    fresh = analyse_sensitivity(model, digits_task, grid=GRID, options=_quiet(cache))
    for output in _legacy_joblib_outputs(model, digits_task, GRID, cache):
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_bytes(payload)
    points = sorted(p for p in cache.rglob("*.json") if "joblib" not in p.relative_to(cache).parts)
    for path, damaged in zip(points, _damaged_versions(points, payload), strict=True):
        path.write_bytes(damaged)
    try:
        again = analyse_sensitivity(model, digits_task, grid=GRID, options=_quiet(cache))
    finally:
        assert not marker.exists()
    assert again.cached_points == 0  # every point file was damaged: all recomputed
    assert again.dense_metric == fresh.dense_metric and again.dense_loss == fresh.dense_loss
    pd.testing.assert_frame_equal(fresh.table, again.table)
    third = analyse_sensitivity(model, digits_task, grid=GRID, options=_quiet(cache))
    assert third.cached_points == third.total_points == 9  # the damaged files were rewritten
    pd.testing.assert_frame_equal(fresh.table, third.table)
    assert not marker.exists()


def test_the_cache_holds_no_pickle(digits_task, digits_dense, tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOPRUNE_CACHE_DIR", str(tmp_path))
    sens = analyse_sensitivity(digits_dense.model, digits_task, grid=(0.5,), options=_quiet(True))
    files = [f for f in (tmp_path / "sensitivity").rglob("*") if f.is_file()]
    assert len(files) == sens.total_points + 1  # one per point, and the dense reference
    assert not [f for f in files if f.suffix == ".pkl" or f.read_bytes()[:1] == b"\x80"]
    assert all(f.suffix == ".json" for f in files)


def test_an_unwritable_cache_warns_and_still_gives_the_table(digits_task, digits_dense, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    fresh = analyse_sensitivity(digits_dense.model, digits_task, grid=(0.5,), options=_quiet())
    with pytest.warns(UserWarning, match="Could not write the sensitivity cache file"):
        sens = analyse_sensitivity(
            digits_dense.model, digits_task, grid=(0.5,), options=_quiet(blocker)
        )
    assert sens.cached_points == 0
    pd.testing.assert_frame_equal(fresh.table, sens.table)


def test_structured_units_are_dependency_groups(conv_task, conv_dense):
    sens = analyse_sensitivity(
        conv_dense.model,
        conv_task,
        granularity="structured",
        grid=(0.5,),
        options=_quiet(),
    )
    # conv2 is tied to conv1 by the residual addition: it is measured with conv1, never alone
    assert sens.units == ["conv1", "conv3", "fc1"]
    assert (sens.table["achieved"] == 0.5).all()


class CrashesWhenFc2IsPruned(nn.Module):
    def __init__(self):
        super().__init__()
        from autoprune.tasks.models import DigitsMLP

        self.mlp = DigitsMLP()

    def forward(self, x):
        if bool((self.mlp.fc2.weight == 0).any()):
            raise RuntimeError("this model refuses to run with a pruned fc2")
        return self.mlp(x)


def test_a_layer_that_crashes_the_model_is_reported_and_the_rest_goes_on(digits_task, digits_dense):
    import dataclasses

    task = dataclasses.replace(digits_task, build_model=CrashesWhenFc2IsPruned)
    model = CrashesWhenFc2IsPruned()
    model.mlp.load_state_dict(digits_dense.model.state_dict())
    sens = analyse_sensitivity(model, task, grid=GRID, options=_quiet())
    fc2 = sens.table[sens.table.layer == "mlp.fc2"]
    assert fc2["error"].str.contains("refuses to run").all() and fc2["metric"].isna().all()
    others = sens.table[sens.table.layer != "mlp.fc2"]
    assert (others["error"] == "").all() and others["metric"].notna().all()
    ranking = sens.ranking()
    assert ranking.iloc[0]["layer"] == "mlp.fc2" and ranking.iloc[0]["failed"] == 3
    assert sens.caps(0.05)["mlp.fc2"] == 0.0


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"grid": ()}, "empty grid"),
        ({"grid": (0.5, 1.0)}, r"amounts in \(0, 1\). Got 1.0"),
        ({"grid": "abc"}, "grid"),
        ({"criterion": "psychic"}, "'criterion' parameter must be one of"),
        (
            {"granularity": "nm"},
            "'granularity' parameter must be one of 'unstructured', 'structured'",
        ),
    ],
)
def test_bad_arguments(kwargs, pattern, digits_task, digits_dense):
    with pytest.raises(AutopruneError, match=pattern):
        analyse_sensitivity(digits_dense.model, digits_task, options=_quiet(), **kwargs)


@pytest.fixture(scope="module")
def digits_sens(digits_task, digits_dense):
    return analyse_sensitivity(
        digits_dense.model, digits_task, grid=(0.1, 0.3, 0.5, 0.7, 0.9), options=_quiet()
    )


def test_caps_and_tiers(digits_sens):
    caps = digits_sens.caps(0.02)
    assert set(caps) == {"fc1", "fc2", "fc3"}
    for unit, cap in caps.items():
        amounts, drops = digits_sens.curve(unit)
        assert all(d <= 0.02 for a, d in zip(amounts, drops, strict=True) if a <= cap)
    assert digits_sens.caps(1.0) == {u: 0.9 for u in caps}
    with pytest.raises(AutopruneError, match="'tolerance' parameter must be in"):
        digits_sens.caps(1.5)
    tiers = digits_sens.tiers(2)
    ranking = list(digits_sens.ranking().layer)
    assert tiers[ranking[0]] == 0 and max(tiers.values()) == 1


def _param_cost(model):
    sizes = {n: m.weight.numel() for n, m in autoprune.prunable_layers(model).items()}
    total = sum(p.numel() for p in model.parameters())
    return (lambda alloc: total - sum(sizes[u] * alloc.get(u, 0.0) for u in sizes)), total, sizes


def test_seed_policies_meet_the_budget(digits_sens, digits_dense):
    cost, total, sizes = _param_cost(digits_dense.model)
    target = 0.3 * total
    uniform = uniform_allocation(list(sizes), cost=cost, target=target)
    assert cost(uniform) <= target and len(set(round(v, 6) for v in uniform.values())) == 1
    by_sensitivity = sensitivity_allocation(digits_sens, cost=cost, target=target)
    assert cost(by_sensitivity) <= target
    ranking = list(digits_sens.ranking().layer)
    assert by_sensitivity[ranking[0]] <= by_sensitivity[ranking[-1]]  # fragile layers keep more
    assert cost(by_sensitivity) > target - 0.02 * total  # and does not overshoot much
    with pytest.raises(BudgetError, match="above the target"):
        uniform_allocation(list(sizes), cost=cost, target=10, caps={"fc1": 0.2})


def test_cli_writes_csv_plot_and_ranking(tmp_path, capsys):
    from autoprune.cli import main

    rc = main(
        [
            "sensitivity",
            "--task",
            "digits-mlp",
            "--grid",
            "0.5,0.9",
            "--out",
            str(tmp_path),
            "--quiet",
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "rank" in out and "fc1" in out and "cap (drop <= 0.02)" in out
    for name in ("sensitivity.csv", "ranking.csv", "sensitivity.png"):
        assert (tmp_path / name).stat().st_size > 0
    table = pd.read_csv(tmp_path / "sensitivity.csv")
    assert len(table) == 6 and set(table.sparsity) == {0.5, 0.9}
    assert (tmp_path / "sensitivity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["sensitivity", "--task", "digits-mlp", "--grid", "0.5,x", "--quiet"]) == 2


def test_structured_points_are_measured_on_one_trace_and_equal_physical_removal(
    conv_task, conv_dense, monkeypatch
):
    from autoprune.prune.units import _channels
    from autoprune.sensitivity import _point
    from autoprune.sensitivity._measurement import Measurement

    traces = []
    original = _channels.trace
    monkeypatch.setattr(_channels, "trace", lambda *a: traces.append(1) or original(*a))
    m = Measurement.of(
        conv_dense.model, conv_task, criterion="l1", granularity="structured", val_items=200, seed=0
    )
    points = [(unit, amount) for unit in ("conv1", "conv3", "fc1") for amount in (0.25, 0.5, 0.75)]
    zeroed = [_point.evaluate_point(m, unit, amount) for unit, amount in points]
    assert len(traces) == 1  # nine points, one trace
    # the same points with the channels removed physically, each on a fresh trace
    monkeypatch.setattr(_point, "_traced", lambda m: None)
    removed = [_point.evaluate_point(m, unit, amount) for unit, amount in points]
    assert len(traces) == 1 + len(points)
    for z, r in zip(zeroed, removed, strict=True):
        assert z["achieved"] == r["achieved"] and not z["error"] and not r["error"]
        assert z["metric"] == pytest.approx(r["metric"], abs=1e-9)
        assert z["loss"] == pytest.approx(r["loss"], rel=1e-4)


def _curves(points: dict[str, list[tuple[float, float]]]) -> Sensitivity:
    rows = [
        {"layer": unit, "sparsity": a, "drop": d, "criterion": "l1", "granularity": "structured"}
        for unit, curve in points.items()
        for a, d in curve
    ]
    return Sensitivity.from_records(rows, dense_metric=0.9)


def test_the_greedy_seed_spends_where_the_curve_loses_least_per_cost_and_meets_the_target():
    sens = _curves(
        {
            "robust": [(0.2, 0.0), (0.4, 0.0), (0.6, 0.01), (0.8, 0.3)],
            "fragile": [(0.2, 0.05), (0.4, 0.1), (0.6, 0.2), (0.8, 0.4)],
        }
    )
    sizes = {"robust": 100, "fragile": 100}
    cost = lambda alloc: sum(n * (1 - alloc[u]) for u, n in sizes.items())  # noqa: E731
    alloc = greedy_allocation(sens, cost=cost, target=140)
    assert alloc["fragile"] == 0.0 and alloc["robust"] == pytest.approx(0.6, abs=1e-6)
    alloc = greedy_allocation(sens, cost=cost, target=100)  # past the robust unit's knee
    assert 100 - 1e-6 <= cost(alloc) <= 100  # the last step is cut to the target
    assert alloc["fragile"] > 0 and alloc["robust"] >= 0.6
    with pytest.raises(BudgetError, match="above the target"):
        greedy_allocation(sens, cost=cost, target=10, caps={"robust": 0.5, "fragile": 0.5})


def test_the_greedy_seed_steps_every_unit_when_no_single_step_saves_anything():
    sens = _curves({"a": [(0.5, 0.1)], "b": [(0.5, 0.2)]})
    cost = lambda alloc: 100 * (1 - min(alloc.values()))  # noqa: E731  (the slowest unit sets it)
    alloc = greedy_allocation(sens, cost=cost, target=50)
    assert alloc["a"] == pytest.approx(0.5, abs=1e-6) and alloc["b"] == pytest.approx(0.5, abs=1e-6)
    assert cost(alloc) <= 50


def test_the_greedy_seed_meets_the_budget_on_a_real_analysis(digits_sens, digits_dense):
    cost, total, _ = _param_cost(digits_dense.model)
    alloc = greedy_allocation(digits_sens, cost=cost, target=0.3 * total)
    assert 0.3 * total - 1 <= cost(alloc) <= 0.3 * total
