"""The sensitivity-cost benchmark measures a real analysis and its forward passes."""

from __future__ import annotations

from benchmarks import sensitivity_cost


def test_a_small_torchvision_model_is_measured_point_by_point():
    row = sensitivity_cost.measure("squeezenet1_1", val_items=8, train_items=8, grid=(0.5,))
    assert row["model"] == "squeezenet1_1" and row["errors"] == 0
    assert row["points"] == row["groups"] > 10  # one point per channel group at one amount
    assert row["forward_s"] > 0 and row["wall_s"] > 0
    assert (
        row["overhead_s"] == round(row["wall_s"] - row["forward_s"], 1)
        or abs(row["overhead_s"] - (row["wall_s"] - row["forward_s"])) < 0.2
    )
