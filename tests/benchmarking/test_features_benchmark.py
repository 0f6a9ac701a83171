"""python -m benchmarks features: input-feature pruning against SelectKBest and RFE."""

from __future__ import annotations

import pandas as pd

from benchmarks.__main__ import build_parser
from benchmarks.features import selected_features, summarise


def test_the_summary_gives_each_method_its_mean_and_autoprunes_verdict():
    rows = [
        {"k": 5, "method": method, "seed": seed, "test_accuracy": value}
        for method, values in (
            ("autoprune", [0.95, 0.96, 0.95]),
            ("SelectKBest", [0.90, 0.90, 0.91]),
            ("RFE", [0.95, 0.94, 0.96]),
        )
        for seed, value in enumerate(values)
    ]
    rows.append({"k": 30, "method": "all 30 features", "seed": 0, "test_accuracy": 0.97})
    summary = {(r["k"], r["method"]): r for r in summarise(pd.DataFrame(rows))}
    assert summary[(5, "autoprune")]["test accuracy"] == round((0.95 + 0.96 + 0.95) / 3, 4)
    assert summary[(5, "autoprune")]["autoprune vs this"] == ""
    assert summary[(5, "SelectKBest")]["autoprune vs this"] == "ahead"
    assert summary[(5, "RFE")]["autoprune vs this"] == "level"
    assert summary[(30, "all 30 features")]["seeds"] == 1
    assert build_parser().parse_args(["features"]).suite == "features"


def test_the_selectors_choose_k_training_features():
    from autoprune.tasks import get_task

    chosen = selected_features(get_task("breast-cancer-mlp"), 5)
    assert set(chosen) == {"SelectKBest", "RFE"}
    assert all(len(kept) == 5 and all(0 <= i < 30 for i in kept) for kept in chosen.values())


def test_the_search_benchmark_runs_both_variants_and_tests_the_searched_one_against_the_other():
    from benchmarks import features_search

    frame = features_search.measure(budgets=("params=0.05",), seeds=(0,))
    assert list(frame.variant) == ["dense", "inputs searched", "all inputs kept"]
    searched, kept_all = frame.iloc[1], frame.iloc[2]
    assert kept_all.inputs_kept == 30 and kept_all.kept == "all"
    assert searched.inputs_kept == len(searched.kept.split()) < 30
    assert (frame.params.iloc[1:] <= frame.limit.iloc[1:]).all()
    rows = {r["variant"]: r for r in features_search.summarise(frame)}
    assert rows["all inputs kept"]["searched vs this"] == "level"  # one seed: no test
    assert rows["dense"]["params (mean)"] == 4130
    assert build_parser().parse_args(["features-search"]).suite == "features-search"
