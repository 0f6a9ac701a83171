"""The latency-model benchmark fits both models on measured variants and times rounded widths."""

from __future__ import annotations

from benchmarks import latency_model


def test_both_latency_models_are_scored_on_variants_they_were_not_fitted_on():
    row = latency_model.model_errors("fashion-cnn", n_samples=10, n_fit=6, batch=2)
    assert row["model"] == "fashion-cnn"
    assert row["table cells"] == 5 + 5 * 5 + 5 * 5 + 5  # conv1, conv2, fc1, fc2: 5 widths a side
    for key in ("table model error", "MACs model error", "table model error, absolute fit"):
        assert row[key].endswith("%") and float(row[key][:-1]) >= 0
    for key in ("fastest third, table model bias", "the same, absolute fit"):  # signed
        assert row[key][0] in "+-" and row[key].endswith("%")
    assert float(row["table s"]) >= 0 and float(row["variants s"]) > 0


def test_rounding_times_a_multiple_of_8_against_the_narrower_widths():
    rows = latency_model.rounding_rows("fashion-cnn", largest=1, batch=2, repeats=2)
    assert len(rows) == 1 and rows[0]["model"] == "fashion-cnn"
    width = rows[0]["multiple of 8"]
    assert rows[0]["ms at it"] > 0 and width % 8 == 0 and width <= rows[0]["dense width"]
    narrower = int(rows[0]["fastest narrower"].rpartition(" at ")[2])
    assert width - 8 < narrower < width
    assert rows[0]["multiple faster"] in {"yes", "no"}
