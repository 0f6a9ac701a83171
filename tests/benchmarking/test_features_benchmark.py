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
