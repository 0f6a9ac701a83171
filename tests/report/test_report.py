"""The report: the front against brute force, the selection rules, numbers equal to the files."""

from __future__ import annotations

import base64
import re

import numpy as np
import pandas as pd
import pytest
from cli_args import digits_search
from hypothesis import given, settings
from hypothesis import strategies as st

from autoprune._pareto import pareto_mask
from autoprune.errors import RunError
from autoprune.final import FinalSummary, choose, finalize, read_final, shortlist
from autoprune.report import build_report, classify, collect_report_data
from autoprune.search import SearchOptions, search


def _brute_force_front(metric, cost):
    n = len(metric)
    keep = []
    for i in range(n):
        dominated = any(
            metric[j] >= metric[i]
            and cost[j] <= cost[i]
            and (metric[j] > metric[i] or cost[j] < cost[i])
            for j in range(n)
        )
        keep.append(not dominated)
    return np.array(keep)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 20)), min_size=1, max_size=40))
def test_front_equals_the_brute_force_definition(points):
    metric = [p[0] / 20 for p in points]  # small integer grids make ties common
    cost = [p[1] / 20 for p in points]
    assert pareto_mask(metric, cost).tolist() == _brute_force_front(metric, cost).tolist()


def test_front_on_random_points():
    rng = np.random.default_rng(0)
    for _ in range(50):
        metric, cost = rng.random(30), rng.random(30)
        assert (pareto_mask(metric, cost) == _brute_force_front(metric, cost)).all()


FRONT = pd.DataFrame(
    {
        "number": [10, 11, 12, 13, 14],
        "val_metric": [0.70, 0.86, 0.895, 0.90, 0.901],
        "cost": [0.1, 0.3, 0.5, 0.8, 1.0],
    }
)


def test_selection_rules():
    assert choose(FRONT, "best") == 14
    assert choose(FRONT, "smallest", tolerance=0.01) == 12  # cheapest within 0.01 of 0.901
    assert choose(FRONT, "smallest", tolerance=0.0) == 14
    assert (
        choose(FRONT, "knee") == 11
    )  # farthest from the line between (0.1, 0.70) and (1.0, 0.901)
    assert list(shortlist(FRONT, "best", top=2).number) == [14, 13]
    assert list(shortlist(FRONT, "smallest", top=2, tolerance=0.01).number) == [12, 13]
    assert list(shortlist(FRONT, "knee", top=3).number) == [11, 10, 12]
    with pytest.raises(Exception, match="'rule' parameter must be one of"):
        choose(FRONT, "cheapest")


def test_classify_marks_every_category():
    trials = pd.DataFrame(
        {
            "number": range(5),
            "state": ["COMPLETE"] * 4 + ["FAIL"],
            "feasible": [True, True, True, False, False],
            "fidelity": ["recovered", "recovered", "confirmed", "rejected", ""],
            "val_metric": [0.9, 0.85, 0.95, 0.99, np.nan],
            "cost": [0.5, 0.7, 0.2, 2.0, np.nan],
        }
    )
    assert list(classify(trials).category) == ["front", "dominated", "one-shot", "infeasible"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "run"
    result = search("digits-mlp", "params=0.3", space="quick", n_trials=6, out=out, progress=False)
    summary = finalize(result, top=2, progress=False)
    paths = build_report(out)
    return result, summary, paths


def test_final_model_files_and_budget_checked_from_them(finished_run):
    result, summary, _ = finished_run
    final = result.run_dir / "final"
    for name in ("policy.yaml", "model.safetensors", "final.json"):
        assert (final / name).is_file()
    assert summary.budget_checks[0].met
    assert summary.final.bytes == (final / "model.safetensors").stat().st_size
    assert summary.chosen_trial in {c.number for c in summary.candidates}
    assert len(summary.candidates) == 2
    chosen = max(summary.candidates, key=lambda c: c.val_metric)
    assert (
        summary.chosen_trial == chosen.number
    )  # rule 'best': highest validation after the full fine-tune


def test_report_numbers_equal_the_files(finished_run):
    result, summary, paths = finished_run
    md = paths["markdown"].read_text()
    front = pd.read_csv(result.run_dir / "front.csv")
    for row in front.itertuples():
        assert (
            f"| {int(row.number)} | {row.val_metric:.4f} | {row.cost:.4f} | {int(row.params):,} |"
            in md
        )
    assert f"| test accuracy | {summary.dense.test_metric:.4f} | {summary.test_metric:.4f} |" in md
    assert f"| parameters (non-zero) | {summary.dense.params:,} | {summary.final.params:,} |" in md
    trials = pd.read_csv(result.run_dir / "trials.csv")
    assert f"{(trials.state == 'COMPLETE').sum()} trials complete" in md


def test_report_data_numbers_equal_the_files_without_drawing(finished_run, tmp_path):
    import json
    import shutil

    result, summary, _ = finished_run
    run_dir = tmp_path / "copy"
    shutil.copytree(result.run_dir, run_dir, ignore=shutil.ignore_patterns("figures", "report.*"))
    before = sorted(p.relative_to(run_dir) for p in run_dir.rglob("*"))
    data = collect_report_data(run_dir)
    assert sorted(p.relative_to(run_dir) for p in run_dir.rglob("*")) == before  # nothing written
    run = json.loads((run_dir / "run.json").read_text())
    trials = pd.read_csv(run_dir / "trials.csv")
    assert data.missing == []
    assert (
        data.n_complete
        == (trials.state == "COMPLETE").sum()
        == sum(data.pareto.category_counts.values())
    )
    assert data.n_failed == (trials.state == "FAIL").sum() == len(data.failed)
    assert data.final.to_dict() == summary.to_dict()
    rows = {r.quantity: r for r in data.comparison}
    assert rows["test_metric"].difference == pytest.approx(
        summary.test_metric - summary.dense.test_metric
    )
    assert rows["params"].ratio == summary.final.params / summary.dense.params
    assert rows["bytes"].final == (run_dir / "final" / "model.safetensors").stat().st_size
    assert rows["latency_ms"].dense == summary.dense.latency.median_ms
    front = pd.read_csv(run_dir / "front.csv")
    chosen_cost = float(front[front.number == summary.chosen_trial].cost.iloc[0])
    assert data.pareto.final_point == (chosen_cost, summary.val_metric)
    assert data.pareto.dense_cost == run["dense_costs"]["params"] / run["limits"]["params"]
    assert data.pareto.category_counts["front"] == len(front)
    assert data.run.dense_test_metric == run["dense"]["test_metric"]
    assert [s.granularity for s in data.sensitivity] == ["unstructured"]


def test_final_json_is_the_summary_serialised_and_reads_back(finished_run, tmp_path):
    import json

    result, summary, _ = finished_run
    on_disk = json.loads((result.run_dir / "final" / "final.json").read_text())
    assert FinalSummary.from_dict(on_disk).to_dict() == on_disk
    assert read_final(result.run_dir).to_dict() == on_disk
    assert list(on_disk) == [
        "chosen_trial",
        "front_latency",
        "rule",
        "tolerance",
        "final_epochs",
        "candidates",
        "val_metric",
        "test_metric",
        "test_loss",
        "dense",
        "final",
        "budget_checks",
        "finalize_seconds",
        "previous_final",
        "metric",
        "chosen_start",
        "inputs",
    ]
    assert on_disk["chosen_start"] == "trained"
    assert on_disk["inputs"] == {}  # every input feature read
    assert {c["start"] for c in on_disk["candidates"]} == {"trained"}
    for candidate in on_disk["candidates"]:  # written before candidates were pinned
        del candidate["pinned"]
    older = FinalSummary.from_dict(on_disk)
    assert [c.pinned for c in older.candidates] == [None] * len(on_disk["candidates"])
    assert older.to_dict() == on_disk
    # written before scratch starts and input features were recorded
    unstarted = {k: v for k, v in on_disk.items() if k not in ("chosen_start", "inputs")}
    unstarted["candidates"] = [
        {k: v for k, v in c.items() if k != "start"} for c in on_disk["candidates"]
    ]
    assert FinalSummary.from_dict(unstarted).chosen.start == "trained"
    assert FinalSummary.from_dict(unstarted).inputs == {}
    del on_disk["dense"]["latency"]["rounds"]
    (tmp_path / "final").mkdir()
    (tmp_path / "final" / "final.json").write_text(json.dumps(on_disk))
    with pytest.raises(RunError, match="'dense.latency' entry has no 'rounds' field"):
        read_final(tmp_path)


def _tiny_run(run_dir, trials: list[dict]) -> None:
    import json

    run_dir.mkdir()
    setup = {
        "task": "t",
        "budgets": ["params=0.1"],
        "space": {"name": "q"},
        "n_trials": 4,
        "seed": 3,
    }
    run = {
        "setup": setup,
        "limits": {"params": 100.0},
        "dense_costs": {"params": 1000},
        "dense": {"metric": "accuracy", "val_metric": 0.9, "test_metric": 0.89},
        "search_seconds": 12.0,
    }
    (run_dir / "run.json").write_text(json.dumps(run))
    pd.DataFrame(trials).to_csv(run_dir / "trials.csv", index=False)


def test_report_data_of_a_run_without_front_or_final_model(tmp_path):
    from autoprune.report._data import MISSING_FINAL, MISSING_FRONT

    row = {"feasible": True, "fidelity": "confirmed", "seed": "", "fail_reason": ""}
    _tiny_run(
        tmp_path / "run",
        [
            {**row, "number": 0, "state": "COMPLETE", "val_metric": 0.8, "cost": 0.5},
            {
                **row,
                "number": 1,
                "state": "COMPLETE",
                "val_metric": 0.7,
                "cost": 2.0,
                "feasible": False,
            },
            {
                **row,
                "number": 2,
                "state": "FAIL",
                "val_metric": None,
                "cost": None,
                "fail_reason": "boom",
            },
            {
                **row,
                "number": 3,
                "state": "COMPLETE",
                "val_metric": 0.6,
                "cost": 0.9,
                "seed": "uniform:unstructured",
            },
        ],
    )
    data = collect_report_data(tmp_path / "run")
    assert data.missing == [MISSING_FINAL, MISSING_FRONT]
    assert (data.n_complete, data.n_failed) == (3, 1)
    assert [(f.number, f.reason) for f in data.failed] == [(2, "boom")]
    assert data.pareto.category_counts == {"one-shot": 2, "infeasible": 1}
    assert data.pareto.dense_cost == 10.0 and data.pareto.final_point is None
    assert list(data.pareto.seeds.number) == [3]
    assert data.final is None and data.comparison == [] and data.sensitivity == []
    assert (data.run.search_seconds, data.run.sensitivity_seconds, data.run.cost_kind) == (
        12.0,
        None,
        "params",
    )
    assert not (tmp_path / "run" / "figures").exists()


def test_html_report_is_self_contained_with_every_image(finished_run):
    _, _, paths = finished_run
    page = paths["html"].read_text()
    images = re.findall(r"src='data:image/png;base64,([^']+)'", page)
    assert len(images) >= 4  # pareto, sparsity, sensitivity, history
    for data in images:
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"
    assert "src='http" not in page and 'src="http' not in page


def test_a_second_finalize_keeps_the_previous_final_model(finished_run):
    result, _, _ = finished_run
    summary = finalize(result, top=1, epochs=0.1, progress=False)
    assert (
        summary.previous_final and (result.run_dir / summary.previous_final.split("/")[-1]).is_dir()
    )


def test_finalize_keeps_a_global_structured_pick_in_the_shape_the_budget_saw(tmp_path):
    import json

    from autoprune.policy import Policy
    from autoprune.policy_file import load_policy
    from autoprune.training import prune_and_finetune

    space = {
        "name": "global-structured",
        "scopes": ["global"],
        "granularities": ["structured"],
        "criteria": ["l1"],
        "schedules": ["gradual"],
        "recovery": {"epochs": 0.3},
        "finetune": {"lr": 1e-3, "final_epochs": 2.0, "gradual_every": 2},
    }
    out = tmp_path / "run"
    result = search(
        "digits-mlp",
        "params=0.4",
        space=space,
        n_trials=3,
        out=out,
        progress=False,
        options=SearchOptions(sensitivity=False),
    )
    summary = finalize(result, top=1, progress=False)
    trials = pd.read_csv(out / "trials.csv")
    assert set(trials.scope) == {"global"}  # the table says what the policies say
    chosen = trials[trials.number == summary.chosen_trial].iloc[0]
    searched = Policy.from_dict(json.loads(chosen.policy))
    shape = prune_and_finetune(
        result.context.fresh_dense(), searched, result.context.task, epochs=0
    )
    assert [c.pinned for c in summary.candidates] == [True]
    final_policy = load_policy(out / "final" / "policy.yaml").policy
    assert final_policy.scope == "local" and final_policy.finetune.epochs == 2.0
    channels = {r["layer"]: r["channels_after"] for r in summary.final.layers}
    assert channels == {r["layer"]: r["channels_after"] for r in shape.layers}
    assert summary.budget_checks[0].met
    md = build_report(out)["markdown"].read_text()
    assert f"Trial(s) {summary.chosen_trial} ranked channels globally" in md


def test_report_of_an_incomplete_run_says_what_is_missing(tmp_path):
    from autoprune.cli import main

    out = tmp_path / "run"
    search("digits-mlp", "params=0.3", space="quick", n_trials=2, out=out, progress=False)
    assert main(["report", str(out)]) == 0
    md = (out / "report.md").read_text()
    assert "No final model yet" in md and "Not in this report yet" in md
    with pytest.raises(RunError, match="not a run directory"):
        build_report(tmp_path)


def test_cli_search_writes_the_report_and_checks_the_budget(tmp_path, capsys):
    from autoprune.cli import main

    rc = main(digits_search(4, "--out", str(tmp_path / "run"), "--quiet", "--top", "1"))
    assert rc == 0
    out = capsys.readouterr().out
    assert "Final model (trial" in out and "met" in out and "report.html" in out
    assert (tmp_path / "run" / "report.html").is_file()
