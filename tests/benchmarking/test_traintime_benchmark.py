"""The train-time benchmark's summary: one row per arm, each against post-training one-shot (Welch)."""

from __future__ import annotations

import pandas as pd

from benchmarks import traintime


def _frame(values: dict[str, list[float]]) -> pd.DataFrame:
    rows = [
        {
            "arm": arm,
            "seed": s,
            "test_accuracy": v,
            "params": 1000,
            "params_share": 0.25,
            "seconds": 1.0,
        }
        for arm, vs in values.items()
        for s, v in enumerate(vs)
    ]
    return pd.DataFrame(rows)


def test_each_arm_is_compared_with_post_training_one_shot():
    arms = [name for name, _ in traintime.ARMS]
    frame = _frame(
        {
            arms[0]: [0.80, 0.81, 0.80, 0.79, 0.80],
            arms[1]: [0.90, 0.91, 0.90, 0.89, 0.90],
            arms[2]: [0.70, 0.71, 0.70, 0.69, 0.70],
            arms[3]: [0.80, 0.79, 0.81, 0.80, 0.80],
        }
    )
    rows = {r["arm"]: r for r in traintime.summarise(frame)}
    assert list(rows) == arms
    assert rows[arms[0]]["vs post-training one-shot"] == ""
    assert rows[arms[1]]["vs post-training one-shot"] == "ahead"
    assert rows[arms[2]]["vs post-training one-shot"] == "behind"
    assert rows[arms[3]]["vs post-training one-shot"] == "level"
    assert rows[arms[1]]["test accuracy"] == 0.9 and rows[arms[1]]["seeds"] == 5
