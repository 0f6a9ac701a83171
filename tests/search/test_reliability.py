"""Reliability: killed runs resume without losing or duplicating anything, workers share a study,
failing trials are recorded, results are deterministic."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from cli_args import candidates, digits_search

from autoprune.apply import load_pruned
from autoprune.search import SearchOptions, open_run, search
from autoprune.tasks.models import DigitsMLP

N_TRIALS = 12
SUPPORT = Path(__file__).resolve().parents[1] / "support"  # interrupt_at.py
ARGS = digits_search(N_TRIALS, "--quiet", "--top", "2")


def _run_cli(out, env, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "autoprune.cli", *ARGS, "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _complete(out) -> int:
    import optuna
    from optuna.storages.journal import JournalFileBackend

    journal = out / "study.journal"
    if not journal.exists():
        return 0
    try:
        storage = optuna.storages.JournalStorage(JournalFileBackend(str(journal)))
        study = optuna.load_study(study_name=out.name, storage=storage)
    except Exception:
        return 0
    return sum(t.state.name == "COMPLETE" for t in candidates(study.trials))


def _front_content(out) -> list[tuple]:
    front = pd.read_csv(out / "front.csv")
    return sorted(
        (row.policy, round(row.val_metric, 6), round(row.cost, 6)) for row in front.itertuples()
    )


def _moments(out, rng):
    """Where to kill, one per phase: (phase, hold point or None, condition to kill at).

    A phase with a hold point is killed for certain: the process, run by
    ``tests/support/interrupt_at.py``, writes the marker when it gets there and waits. The
    trials are killed at a random number of finished trials plus a random delay, wherever
    that lands.
    """
    return [
        ("sensitivity analysis", "sensitivity", None),
        ("a trial (early)", None, lambda: _complete(out) >= rng.randint(1, 4)),
        ("a trial (late)", None, lambda: _complete(out) >= rng.randint(6, 10)),
        ("picking and writing the final model", "final", None),
        ("writing the report", "report", None),
    ]


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_keeps_every_trial_and_the_same_front(
    tmp_path, monkeypatch
):
    base_env = {**os.environ, "AUTOPRUNE_NO_PROGRESS": "1", "PYTHONPATH": os.getcwd()}
    reference = tmp_path / "reference"
    done = _run_cli(
        reference, {**base_env, "AUTOPRUNE_CACHE_DIR": str(tmp_path / "cache-reference")}
    )
    assert done.returncode == 0, done.stderr
    cache = (
        tmp_path / "cache-interrupted"
    )  # its own cache: the dense model and sensitivity really run again
    env = {**base_env, "AUTOPRUNE_CACHE_DIR": str(cache)}
    monkeypatch.setenv(
        "AUTOPRUNE_CACHE_DIR", str(cache)
    )  # open_run here reads the run's dense model
    interrupted = tmp_path / "interrupted"
    rng = random.Random(11)
    kills, snapshots = [], []
    for phase, hold_at, condition in _moments(interrupted, rng):
        marker, errors = tmp_path / f"held-{hold_at}", tmp_path / f"stderr-{len(kills)}"
        held = [str(SUPPORT / "interrupt_at.py"), f"hold-{hold_at}", "-1", "--"]
        with errors.open("w") as stderr:
            proc = subprocess.Popen(
                [sys.executable, *(held if hold_at else ["-m", "autoprune.cli"]), *ARGS]
                + ["--out", str(interrupted)],
                env={**env, "AUTOPRUNE_KILL_MARKER": str(marker)},
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        reached = condition or marker.exists
        deadline = time.time() + 600  # a safety net on a stuck machine, not a timing assumption
        while proc.poll() is None and not reached() and time.time() < deadline:
            time.sleep(0.05)
        if hold_at is None:
            time.sleep(rng.uniform(0.0, 0.15))
        if proc.poll() is not None:
            assert hold_at is None, f"ended before holding at {hold_at}: {errors.read_text()}"
            continue  # the trials went by before the random moment came
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert hold_at is None or marker.exists(), f"no hold at {hold_at!r} within 600 s"
        kills.append(phase)
        if _complete(interrupted):
            study = open_run(interrupted).study
            snapshots.append(
                {
                    (t.number, json.dumps(t.params, sort_keys=True), tuple(t.values))
                    for t in study.trials
                    if t.state.name == "COMPLETE"
                }
            )
    final = _run_cli(interrupted, env)
    assert final.returncode == 0, final.stderr
    held = {"sensitivity analysis", "picking and writing the final model", "writing the report"}
    assert held <= set(kills), kills
    assert "a trial (early)" in kills or "a trial (late)" in kills
    study = open_run(interrupted).study
    complete = [t for t in candidates(study.trials) if t.state.name == "COMPLETE"]
    assert len(complete) == N_TRIALS  # nothing lost, nothing duplicated
    finished = [t for t in study.trials if t.state.name == "COMPLETE"]  # recoveries too
    now = {(t.number, json.dumps(t.params, sort_keys=True), tuple(t.values)) for t in finished}
    for snapshot in snapshots:
        assert snapshot <= now  # every trial finished before a kill is still there, unchanged
    lost = [t for t in study.trials if t.state.name == "FAIL"]
    assert all("died" in t.user_attrs.get("fail_reason", "") for t in lost)
    retried = {t.user_attrs.get("retry_of") for t in study.trials} - {None}
    assert retried == {
        t.number for t in lost
    }  # every lost trial was retried (a retry may itself be lost)
    assert _front_content(interrupted) == _front_content(reference)
    a = load_pruned(reference / "final").state_dict()
    b = load_pruned(interrupted / "final").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    if os.environ.get("AUTOPRUNE_KILL_REPORT"):  # `make bench-reliability` records the figures
        report = {"kills": kills, "trials_failed_by_kills": len(lost), "complete": len(complete)}
        with open(os.environ["AUTOPRUNE_KILL_REPORT"], "w") as f:
            json.dump(report, f, indent=2)


@pytest.mark.slow
def test_two_worker_processes_finish_exactly_n_trials(tmp_path):
    result = search(
        "digits-mlp",
        "params=0.3",
        space="quick",
        n_trials=10,
        out=tmp_path / "run",
        progress=False,
        options=SearchOptions(n_jobs=2),
    )
    trials = result.trials
    trials = candidates(trials)
    assert (trials.state == "COMPLETE").sum() == 10 and len(trials) == 10
    assert trials.number.is_unique
    workers = {w.rpartition(":")[2] for w in trials.worker}
    assert 1 <= len(workers) <= 2  # which process runs how many is up to the scheduler
    json.loads((result.run_dir / "run.json").read_text())  # not corrupted
    assert len(candidates(open_run(result.run_dir).trials)) == 10


def test_the_same_seed_gives_the_same_trial_sequence(tmp_path):
    runs = [
        search(
            "digits-mlp",
            "params=0.3",
            space="quick",
            n_trials=6,
            out=tmp_path / name,
            progress=False,
        )
        for name in ("a", "b")
    ]
    columns = ["number", "granularity", "criterion", "val_metric", "cost", "policy"]
    pd.testing.assert_frame_equal(runs[0].trials[columns], runs[1].trials[columns])
    other = search(
        "digits-mlp",
        "params=0.3",
        space="quick",
        n_trials=6,
        out=tmp_path / "c",
        seed=1,
        progress=False,
    )
    assert not other.trials["policy"].equals(runs[0].trials["policy"])


class Troubled(DigitsMLP):
    """Once pruned, fails in one of three ways (or not at all), decided by its pruning pattern."""

    def forward(self, x):
        zeros = int((self.fc1.weight == 0).sum())
        if zeros:
            mode = zeros % 4
            if mode == 0:
                return super().forward(x) * float("inf")  # the loss becomes inf
            if mode == 1:
                raise MemoryError("out of memory (simulated)")
            if mode == 2:
                raise RuntimeError("model stopped running after pruning")
        return super().forward(x)


def test_every_kind_of_failing_trial_is_recorded_and_reported(digits_task, tmp_path):
    from autoprune.final import finalize
    from autoprune.report import build_report

    task = dataclasses.replace(digits_task, name="digits-troubled", build_model=Troubled)
    space = {
        "granularities": ["unstructured"],
        "scopes": ["local"],
        "criteria": ["l1"],
        "schedules": ["one-shot"],
        "recovery": {"epochs": 0.2},
        "finetune": {"lr": 1e-3},
        "levels": [1.0, 0.5, 0.3],
    }
    result = search(
        task,
        "params=0.6",
        space=space,
        n_trials=6,
        out=tmp_path / "run",
        progress=False,
        options=SearchOptions(sensitivity=False, max_failures=80),
    )
    reasons = " | ".join(result.trials.fail_reason)
    assert "diverged" in reasons or "non-finite" in reasons
    assert "MemoryError: out of memory (simulated)" in reasons
    assert "RuntimeError: model stopped running after pruning" in reasons
    assert (candidates(result.trials).state == "COMPLETE").sum() == 6
    finalize(result, top=1, epochs=0.1, progress=False)
    report = build_report(result.run_dir)["markdown"].read_text()
    assert "## Failed trials" in report and "model stopped running after pruning" in report
