"""The final step with ``finetune.from_scratch``: each shortlisted policy also trained from scratch."""

from __future__ import annotations

import pytest

from autoprune.final import finalize, read_final
from autoprune.model_dir import load_pruned
from autoprune.policy_file import load_policy
from autoprune.report import build_report
from autoprune.search import SearchOptions, search
from autoprune.tasks import get_task
from autoprune.training import evaluate

SPACE = {
    "scopes": ["local"],
    "granularities": ["structured"],
    "criteria": ["l1"],
    "schedules": ["one-shot"],
    "levels": [1.0],
    "recovery": {"top": 1, "epochs": 0.2},
    "finetune": {"lr": 1e-3, "final_epochs": 0.2, "gradual_every": 2, "from_scratch": True},
}


@pytest.fixture(scope="module")
def scratch_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("scratch") / "run"
    options = SearchOptions(sensitivity=False)
    result = search(
        "digits-mlp",
        "params=0.4",
        space=SPACE,
        n_trials=3,
        out=out,
        progress=False,
        options=options,
    )
    return result, finalize(result, top=1, progress=False)


def test_each_shortlisted_policy_is_fine_tuned_and_trained_from_scratch(scratch_run):
    _, summary = scratch_run
    assert [(c.number, c.start) for c in summary.candidates] == [
        (summary.chosen_trial, "trained"),
        (summary.chosen_trial, "scratch"),
    ]
    best = max(summary.candidates, key=lambda c: c.val_metric)
    assert summary.chosen == best and summary.chosen_start == best.start
    assert summary.val_metric == best.val_metric


def test_the_saved_model_is_the_chosen_one_and_says_how_it_was_trained(scratch_run):
    result, summary = scratch_run
    final_dir = result.run_dir / "final"
    assert read_final(result.run_dir) == summary
    document = load_policy(final_dir / "policy.yaml")
    assert document.results["start"] == summary.chosen_start
    task = get_task("digits-mlp")
    if summary.chosen_start == "scratch":
        assert document.policy.schedule.name == "gradual"
        assert document.policy.finetune.epochs == pytest.approx(task.epochs + 0.2)
    else:
        assert document.policy.finetune.epochs == pytest.approx(0.2)
    model = load_pruned(final_dir)
    assert evaluate(model, task.val_data, task).metric == pytest.approx(summary.val_metric)
    assert sum(p.numel() for p in model.parameters()) <= 0.4 * sum(
        p.numel() for p in task.new_model().parameters()
    )


def test_the_report_names_where_each_candidate_started(scratch_run):
    result, summary = scratch_run
    text = build_report(result.run_dir)["markdown"].read_text()
    assert "also trained from a fresh initialisation" in text
    how = "trained from scratch" if summary.chosen_start == "scratch" else "fine-tuned"
    assert f"trial {summary.chosen_trial}, {how}." in text
    assert "| trial | start |" in text


def test_two_trainings_of_one_trial_are_told_apart_when_choosing():
    from autoprune.final._finetune import Tuned, choose_tuned
    from autoprune.final._summary import Candidate

    trained = Tuned(Candidate(4, 0.80, 0.7, 0.5), policy=None, outcome=None)
    scratch = Tuned(Candidate(4, 0.85, 0.7, 0.5, start="scratch"), policy=None, outcome=None)
    assert choose_tuned([trained, scratch], "best", tolerance=0.005) is scratch
    assert choose_tuned([scratch, trained], "best", tolerance=0.005) is scratch
    assert choose_tuned([trained], "best", tolerance=0.005) is trained
