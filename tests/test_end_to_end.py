"""One real end-to-end run on Fashion-MNIST: dense training, search, final model, report, reload."""

from __future__ import annotations

import json

import pytest
import torch

from autoprune.apply import load_pruned
from autoprune.budgets import measure_costs
from autoprune.cli import main


@pytest.mark.slow
def test_fashion_cnn_search_to_report_on_a_small_budget(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(
        [
            "search",
            "--task",
            "fashion-cnn",
            "--task-option",
            "train_size=4000",
            "--task-option",
            "test_size=2000",
            "--budget",
            "params=0.2",
            "--space",
            "quick",
            "--trials",
            "6",
            "--out",
            str(out),
            "--quiet",
            "--top",
            "2",
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "Pareto front" in printed and "Final model (trial" in printed
    final = json.loads((out / "final" / "final.json").read_text())
    assert all(check["met"] for check in final["budget_checks"])
    assert final["test_metric"] > 0.70 and final["dense"]["test_metric"] > 0.75
    model = load_pruned(out / "final")
    costs = measure_costs(model, torch.zeros(1, 1, 28, 28))
    assert costs.params == final["final"]["params"] <= 0.2 * 421_642
    assert (out / "report.html").stat().st_size > 50_000 and (out / "report.md").is_file()
