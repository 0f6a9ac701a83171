"""Sensitivity analysis: curves, caching, parallelism, derived caps/tiers/seeds, CLI."""

from __future__ import annotations

import copy

import pandas as pd
import pytest
import torch
from torch import nn

import autoprune
from autoprune.errors import AutopruneError, BudgetError
from autoprune.sensitivity import (
    analyse_sensitivity,
    sensitivity_allocation,
    uniform_allocation,
)

GRID = (0.3, 0.6, 0.9)


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
    sens = analyse_sensitivity(model, task, grid=GRID, cache=tmp_path, progress=False)
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
    first = analyse_sensitivity(model, digits_task, grid=GRID, cache=tmp_path, progress=False)
    assert first.cached_points == 0
    second = analyse_sensitivity(model, digits_task, grid=GRID, cache=tmp_path, progress=False)
    assert second.cached_points == second.total_points == 9
    pd.testing.assert_frame_equal(first.table, second.table)
    with torch.no_grad():
        model.fc2.weight[0, 0] += 0.5
    third = analyse_sensitivity(model, digits_task, grid=GRID, cache=tmp_path, progress=False)
    assert third.cached_points == 0
    assert third.dense_metric == pytest.approx(first.dense_metric, abs=0.02)


def test_cache_misses_when_the_loss_changes(digits_task, digits_dense, tmp_path):
    import dataclasses

    from torch import nn

    first = analyse_sensitivity(
        digits_dense.model, digits_task, grid=(0.5,), cache=tmp_path, progress=False
    )
    smoothed = dataclasses.replace(digits_task, loss=nn.CrossEntropyLoss(label_smoothing=0.2))
    second = analyse_sensitivity(
        digits_dense.model, smoothed, grid=(0.5,), cache=tmp_path, progress=False
    )
    assert first.cached_points == 0 and second.cached_points == 0
    assert second.table["loss"].iloc[0] != pytest.approx(first.table["loss"].iloc[0])


def test_two_workers_give_the_same_table_as_one(digits_task, digits_dense):
    one = analyse_sensitivity(
        digits_dense.model, digits_task, grid=GRID, cache=False, n_jobs=1, progress=False
    )
    two = analyse_sensitivity(
        digits_dense.model, digits_task, grid=GRID, cache=False, n_jobs=2, progress=False
    )
    pd.testing.assert_frame_equal(one.table, two.table)


def test_structured_units_are_dependency_groups(conv_task, conv_dense):
    sens = analyse_sensitivity(
        conv_dense.model,
        conv_task,
        granularity="structured",
        grid=(0.5,),
        cache=False,
        progress=False,
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
    sens = analyse_sensitivity(model, task, grid=GRID, cache=False, progress=False)
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
        analyse_sensitivity(digits_dense.model, digits_task, cache=False, progress=False, **kwargs)


@pytest.fixture(scope="module")
def digits_sens(digits_task, digits_dense):
    return analyse_sensitivity(
        digits_dense.model, digits_task, grid=(0.1, 0.3, 0.5, 0.7, 0.9), cache=False, progress=False
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
