"""`autoprune pick`: the final model of another trial, or of a tighter budget, without a new search."""

from __future__ import annotations

import json
from dataclasses import replace

import pandas as pd
import pytest

from autoprune.apply import load_pruned
from autoprune.budgets import measure_costs
from autoprune.cli import build_parser, main
from autoprune.errors import AutopruneError, BudgetError, RunError
from autoprune.final import pick, read_pick
from autoprune.final._pick import trial_row
from autoprune.policy import Policy
from autoprune.policy_file import load_policy
from autoprune.search import search

EPOCHS = 0.1  # a short fine-tune: the pipeline is the point, not the accuracy


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A small finished search (digits-mlp under params=0.3, quick space: levels 1.0 and 0.6)."""
    out = tmp_path_factory.mktemp("pick") / "run"
    return search("digits-mlp", "params=0.3", space="quick", n_trials=6, out=out, progress=False)


def _row(result, number: int) -> pd.Series:
    return result.trials[result.trials.number == number].iloc[0]


def _below_budget(result, recovered: bool) -> int:
    """The cheapest complete feasible trial of one kind (recovery or candidate): below the budget."""
    trials = result.trials
    pool = trials[(trials.state == "COMPLETE") & trials.feasible & (trials.policy != "")]
    pool = pool[pool.recover_of.notna() if recovered else pool.recover_of.isna()]
    return int(pool.sort_values(["params", "number"]).iloc[0].number)


def _check_model_of_trial(result, out, number: int) -> None:
    """``out`` holds a loadable model with trial ``number``'s policy and parameter count."""
    row = _row(result, number)
    ctx = result.context
    model = load_pruned(out, build_model=ctx.task.build_model, example_input=ctx.example_input)
    assert measure_costs(model, ctx.example_input, scope=ctx.scope).params == int(row.params)
    searched = Policy.from_dict(json.loads(row.policy))
    picked = load_policy(out / "policy.yaml")
    assert picked.policy == replace(searched, finetune=replace(searched.finetune, epochs=EPOCHS))
    assert picked.provenance["trial"] == number
    saved = read_pick(out)
    assert saved.trial == number and saved.summary.chosen_trial == number
    recover_of = None if pd.isna(row.recover_of) else int(row.recover_of)
    assert saved.recover_of == recover_of
    assert saved.summary.final.params == int(row.params)
    assert all(check.met for check in saved.summary.budget_checks)


def test_pick_a_recovery_trial_below_the_budget(run):
    number = _below_budget(run, recovered=True)
    assert _row(run, number).cost < 0.9  # a point of the front well below the budget
    chosen = pick(run.run_dir, trial=number, epochs=EPOCHS, progress=False)
    assert chosen.out == run.run_dir / "picks" / f"trial-{number}"
    assert sorted(p.name for p in chosen.out.iterdir()) == [
        "model.safetensors",
        "pick.json",
        "policy.yaml",
    ]
    _check_model_of_trial(run, chosen.out, number)
    assert not list(chosen.out.parent.glob(".pick-*"))  # no staging left behind


def test_cli_picks_a_candidate_trial_into_out(run, tmp_path, capsys):
    number = _below_budget(run, recovered=False)
    out = tmp_path / "chosen"
    argv = ["pick", str(run.run_dir), "--trial", str(number), "--out", str(out), "--quiet"]
    assert main([*argv, "--epochs", str(EPOCHS)]) == 0
    printed = capsys.readouterr().out
    assert f"Picked trial {number}" in printed and "met" in printed and str(out) in printed
    _check_model_of_trial(run, out, number)


def test_pick_by_a_tighter_budget_takes_the_best_trial_meeting_it(run):
    ctx = run.context
    budget = 0.2  # the run's budget is 0.3; its 0.6 level reaches 0.18
    trials = run.trials
    meeting = trials[
        (trials.state == "COMPLETE")
        & trials.feasible
        & (trials.fidelity == "recovered")
        & (trials.params <= budget * ctx.dense_costs.params)
    ]
    assert not meeting.empty
    expected = int(meeting.sort_values("val_metric", ascending=False).iloc[0].number)
    chosen = pick(run.run_dir, budget=f"params={budget}", epochs=EPOCHS, progress=False)
    assert chosen.trial == expected and chosen.budget == f"params={budget}"
    assert chosen.out == run.run_dir / "picks" / f"trial-{expected}"
    checks = {c.budget: c for c in chosen.summary.budget_checks}
    assert checks["params <= 0.2 x dense"].met and checks["params <= 0.3 x dense"].met
    assert chosen.summary.final.params <= budget * ctx.dense_costs.params
    assert read_pick(chosen.out).budget == f"params={budget}"


def test_an_unknown_trial_is_one_line_naming_it(run, capsys):
    assert main(["pick", str(run.run_dir), "--trial", "999", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Got 999 instead" in err and "trials.csv" in err
    assert not (run.run_dir / "picks" / "trial-999").exists()


def test_an_unreachable_budget_names_the_smallest_cost_reached(run):
    smallest = int(run.trials[run.trials.fidelity.isin(["recovered", "confirmed"])].params.min())
    with pytest.raises(BudgetError, match="params=0.01") as info:
        pick(run.run_dir, budget="params=0.01", progress=False)
    assert f"the smallest params the run reached is {smallest:,}" in str(info.value)
    assert "new search" in str(info.value)


def test_a_looser_budget_than_the_runs_is_refused(run):
    with pytest.raises(BudgetError, match="tighter than or equal to the run's"):
        pick(run.run_dir, budget="params=0.5", progress=False)


def test_failed_and_rejected_trials_are_refused():
    trials = pd.DataFrame(
        {
            "number": [0, 1, 2],
            "state": ["FAIL", "COMPLETE", "COMPLETE"],
            "fidelity": ["", "rejected", "confirmed"],
            "feasible": [False, False, True],
            "fail_reason": ["during recovery: the loss diverged", "", ""],
            "policy": ["", "{}", "{}"],
        }
    )
    with pytest.raises(RunError, match="Trial 0 of run failed .during recovery"):
        trial_row(trials, 0, "run")
    with pytest.raises(RunError, match="Trial 1 of run was rejected"):
        trial_row(trials, 1, "run")
    assert int(trial_row(trials, 2, "run").number) == 2


def test_a_directory_without_a_study_is_one_line(tmp_path, capsys):
    assert main(["pick", str(tmp_path), "--trial", "1"]) == 2
    err = capsys.readouterr().err
    assert "is not a run directory" in err and err.count("\n") == 1


def test_out_is_replaced_only_when_an_earlier_pick_wrote_it(run, tmp_path):
    first, second = sorted(run.trials[run.trials.fidelity == "recovered"].number)[:2]
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("mine")
    with pytest.raises(AutopruneError, match="not the output of an earlier 'autoprune pick'"):
        pick(run.run_dir, trial=int(first), out=stranger, progress=False)
    assert [p.name for p in stranger.iterdir()] == ["notes.txt"]
    applied = tmp_path / "applied"  # another command's pruned model: no pick.json
    applied.mkdir()
    for name in ("policy.yaml", "model.safetensors"):
        (applied / name).write_text("x")
    with pytest.raises(AutopruneError, match="holds model.safetensors, policy.yaml"):
        pick(run.run_dir, trial=int(first), out=applied, progress=False)
    assert (applied / "policy.yaml").read_text() == "x"

    out = tmp_path / "mine"
    pick(run.run_dir, trial=int(first), out=out, epochs=0, progress=False)
    pick(run.run_dir, trial=int(second), out=out, epochs=0, progress=False)  # its own output
    assert read_pick(out).trial == int(second)
    assert sorted(p.name for p in out.iterdir()) == [
        "model.safetensors",
        "pick.json",
        "policy.yaml",
    ]
    assert not list(tmp_path.glob(".pick-*"))


def test_pick_help_documents_both_ways():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    text = sub.choices["pick"].format_help()
    assert "--trial N" in text and "--budget KIND=VALUE" in text and "picks/trial-N" in text
    with pytest.raises(SystemExit):
        parser.parse_args(["pick", "run", "--trial", "1", "--budget", "params=0.1"])
    with pytest.raises(SystemExit):
        parser.parse_args(["pick", "run"])
