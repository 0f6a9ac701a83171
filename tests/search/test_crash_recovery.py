"""Recovery: every coordination step of a search survives a crash at any point, and nothing is lost.

Each test provokes one failure at an exact point (no timing): a process killed
right after claiming a trial, while drawing its parameters or while running it;
a crash half-way through queueing the seeds or the slots; a torn journal record;
a lock holder killed; two finalizes of one run at once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from cli_args import candidates, digits_search

from autoprune.errors import RunError
from autoprune.search import SearchOptions, open_run, search, trials_frame
from autoprune.search._lock import FileLock, MarkerLock
from autoprune.search._storage import repair_journal

QUICK = "quick"
TESTS = Path(__file__).resolve().parents[1] / "support"  # interrupt_at.py


def _env(tmp_path, **extra) -> dict:
    return {
        **os.environ,
        "AUTOPRUNE_NO_PROGRESS": "1",
        "PYTHONPATH": os.getcwd(),
        "AUTOPRUNE_CACHE_DIR": str(tmp_path / "cache"),
        **extra,
    }


def _cli(args, env, *, kill: tuple[str, int] | None = None) -> subprocess.CompletedProcess:
    prefix = (
        [str(TESTS / "interrupt_at.py"), kill[0], str(kill[1]), "--"]
        if kill
        else ["-m", "autoprune.cli"]
    )
    return subprocess.run(
        [sys.executable, *prefix, *args], env=env, capture_output=True, text=True, timeout=600
    )


def _study(run_dir):
    """The study of a run directory, read from its journal alone (no dense model is needed)."""
    from optuna.storages.journal import JournalFileBackend

    storage = optuna.storages.JournalStorage(JournalFileBackend(str(run_dir / "study.journal")))
    return optuna.load_study(study_name=run_dir.name, storage=storage)


def _outcomes(run_dir) -> list[tuple[str, tuple]]:
    """What the completed trials drew and measured, in the order they ran (retries in their slot)."""
    study = _study(run_dir)
    done = [t for t in candidates(study.trials) if t.state.name == "COMPLETE"]
    done.sort(key=lambda t: t.datetime_start)
    return [
        (json.dumps(t.params, sort_keys=True), tuple(round(v, 6) for v in t.values)) for t in done
    ]


# ---------------------------------------------------------------------------- killed trials


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["after-claim", "mid-sampling", "mid-trial"])
def test_a_run_killed_in_a_trial_resumes_to_exactly_what_an_uninterrupted_run_finds(
    tmp_path, moment
):
    """The lost trial is failed at once on resume, retried first, and draws what it would have."""
    args = digits_search(7, "--quiet", "--no-finalize")
    env = _env(tmp_path, AUTOPRUNE_KILL_MARKER=str(tmp_path / "killed"))
    reference = _cli([*args, "--out", str(tmp_path / "reference")], env)
    assert reference.returncode == 0, reference.stderr
    out = tmp_path / "interrupted"
    killed = _cli([*args, "--out", str(out)], env, kill=(moment, 5))
    assert killed.returncode == -signal.SIGKILL, killed.stderr  # trial 5 is a sampler proposal
    resumed = _cli([*args, "--out", str(out)], env)
    assert resumed.returncode == 0, resumed.stderr
    assert _outcomes(out) == _outcomes(tmp_path / "reference")
    trials = trials_frame(_study(out))
    lost = trials[trials.state == "FAIL"]
    assert list(lost.number) == [5] and "died" in lost.fail_reason.iloc[0]
    assert list(trials[trials.retry_of == 5].state) == ["COMPLETE"]
    started = {t.number: t.datetime_start for t in _study(out).trials}
    retry = int(trials[trials.retry_of == 5].number.iloc[0])
    assert started[retry] < started[6]  # failed at once on resume and retried before anything new


@pytest.mark.slow
def test_two_processes_on_one_study_draw_different_trials(tmp_path):
    out = tmp_path / "run"
    env = _env(tmp_path)
    _cli([*digits_search(2, "--quiet", "--no-finalize"), "--out", str(out)], env)  # prepared once
    args = [*digits_search(12, "--quiet", "--no-finalize"), "--out", str(out)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "autoprune.cli", *args],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for proc in procs:
        assert proc.wait(timeout=600) == 0, proc.stderr.read()
    trials = trials_frame(_study(out))
    trials = candidates(trials)
    sampled = trials[(trials.state == "COMPLETE") & (trials.seed == "")]
    assert len(trials[trials.state == "COMPLETE"]) == 12 and trials.worker.nunique() >= 2
    assert sampled.policy.is_unique  # each process draws from streams of its own


# ---------------------------------------------------------------------------- queueing crashes


class Crash(BaseException):
    """Stands for a process killed at this point."""


def test_a_crash_while_slots_are_queued_is_made_whole_by_the_next_run(tmp_path, monkeypatch):
    import autoprune.search._study as study_module

    out = tmp_path / "run"
    real = study_module.top_up_slots

    def top_up_then_crash(study, n_trials):
        study.enqueue_trial({}, skip_if_exists=False)
        raise Crash

    monkeypatch.setattr(study_module, "top_up_slots", top_up_then_crash)
    with pytest.raises(Crash):
        search("digits-mlp", "params=0.3", space=QUICK, n_trials=12, out=out, progress=False)
    monkeypatch.setattr(study_module, "top_up_slots", real)
    result = search("digits-mlp", "params=0.3", space=QUICK, n_trials=12, out=out, progress=False)
    trials = candidates(result.trials)
    assert (trials.state == "COMPLETE").sum() == 12 and len(trials) == 12


def test_a_crash_half_way_through_the_seeds_queues_each_seed_once(tmp_path, monkeypatch):
    out = tmp_path / "run"
    real, calls = optuna.Study.enqueue_trial, []

    def enqueue_then_crash(self, params=None, user_attrs=None, skip_if_exists=False):
        calls.append(1)
        if len(calls) == 2:
            raise Crash
        return real(self, params, user_attrs=user_attrs, skip_if_exists=skip_if_exists)

    monkeypatch.setattr(optuna.Study, "enqueue_trial", enqueue_then_crash)
    with pytest.raises(Crash):
        search("digits-mlp", "params=0.3", space=QUICK, n_trials=8, out=out, progress=False)
    monkeypatch.setattr(optuna.Study, "enqueue_trial", real)
    result = search("digits-mlp", "params=0.3", space=QUICK, n_trials=8, out=out, progress=False)
    seeds = result.trials.seed[result.trials.seed != ""]
    assert len(seeds) >= 2 and seeds.is_unique  # every seed ran, none twice
    assert (candidates(result.trials).state == "COMPLETE").sum() == 8


# ---------------------------------------------------------------------------- the journal


def _records(n: int) -> list[bytes]:
    return [
        json.dumps({"op_code": 8, "trial_id": 0, "user_attr": {f"k{i}": i}}).encode()
        for i in range(n)
    ]


def test_repair_journal_cuts_a_torn_tail_and_unglues_a_torn_record(tmp_path):
    journal = tmp_path / "study.journal"
    a, b, c = _records(3)
    journal.write_bytes(a + b"\n" + b[:9] + c + b"\n" + c[:5])  # torn b glued to c, then torn c
    assert repair_journal(journal) == 2
    assert journal.read_bytes() == a + b"\n" + c + b"\n"
    assert len(list(tmp_path.glob("study.journal.damaged-*"))) == 1  # the damaged file is kept
    assert repair_journal(journal) == 0  # a whole journal is left alone
    journal.write_bytes(a + b"\nnot a record\n")
    with pytest.raises(RunError, match="line 2 is damaged beyond repair"):
        repair_journal(journal)


def test_a_search_resumes_after_a_write_cut_short_by_a_full_disk(tmp_path):
    out = tmp_path / "run"
    first = search("digits-mlp", "params=0.3", space=QUICK, n_trials=3, out=out, progress=False)
    before = first.trials[["number", "val_metric", "policy"]]
    journal = out / "study.journal"
    lines = journal.read_bytes().split(b"\n")[:-1]
    last = lines[
        -1
    ]  # a full disk cut this record short; after space was freed it was written again
    journal.write_bytes(b"\n".join(lines[:-1]) + b"\n" + last[: len(last) // 2] + last + b"\n")
    second = search("digits-mlp", "params=0.3", space=QUICK, n_trials=4, out=out, progress=False)
    assert (candidates(second.trials).state == "COMPLETE").sum() == 4
    kept = second.trials.set_index("number").loc[before.number, ["val_metric", "policy"]]
    assert kept.reset_index().equals(before.reset_index(drop=True))


# ---------------------------------------------------------------------------- locks


def test_a_lock_holder_killed_releases_the_lock_at_once(tmp_path):
    lock, held = tmp_path / ".autoprune.lock", tmp_path / "held"
    code = (
        "import sys, time; from autoprune.search._lock import FileLock; "
        f"l = FileLock({str(lock)!r}); l.acquire(); open({str(held)!r}, 'w').close(); time.sleep(600)"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], env=_env(tmp_path))
    while not held.exists():  # the marker the holder writes once it holds the lock
        assert holder.poll() is None
    assert not FileLock(lock).try_acquire()
    holder.kill()
    holder.wait()
    assert FileLock(lock).try_acquire()


def test_a_database_lock_left_without_an_owner_is_broken_after_the_grace_period(tmp_path):
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 's.db'}")
    optuna.create_study(
        study_name="s:autoprune-lock", storage=storage
    )  # a holder that died at once
    lock = MarkerLock(storage, "s", grace_period=1)
    lock.acquire()  # returns: the stale marker is broken, not waited on for ever
    assert (
        storage.get_study_user_attrs(storage.get_study_id_from_name("s:autoprune-lock"))["owner"]
        == lock.token
    )
    lock.release()
    assert [s.study_name for s in optuna.get_all_study_summaries(storage)].count(
        "s:autoprune-lock"
    ) == 0


# ---------------------------------------------------------------------------- two finalizes


@pytest.mark.slow
def test_two_finalizes_of_one_run_both_leave_a_whole_final_model(tmp_path):
    """One finalize pauses with its model staged while a second one runs from start to end."""
    out = tmp_path / "run"
    paused, resume = tmp_path / "paused", tmp_path / "resume"
    env = _env(tmp_path, AUTOPRUNE_KILL_MARKER=str(paused), AUTOPRUNE_RESUME_MARKER=str(resume))
    done = _cli([*digits_search(4, "--quiet", "--no-finalize"), "--out", str(out)], env)
    assert done.returncode == 0, done.stderr
    finalize = ["report", str(out), "--finalize", "--quiet", "--top", "1"]
    pause = [str(TESTS / "interrupt_at.py"), "pause-after-save", "0", "--"]
    first = subprocess.Popen(
        [sys.executable, *pause, *finalize], env=env, stderr=subprocess.PIPE, text=True
    )
    while not paused.exists():  # the marker the first finalize writes once its model is staged
        assert first.poll() is None, first.stderr.read()
    second = _cli(finalize, env)
    resume.write_text("go")
    assert second.returncode == 0, second.stderr
    assert first.wait(timeout=600) == 0, first.stderr.read()
    finals = [out / "final", *out.glob("final-*")]
    assert len(finals) == 2
    for final in finals:
        assert sorted(p.name for p in final.iterdir()) == [
            "final.json",
            "model.safetensors",
            "policy.yaml",
        ]
    assert not list(out.glob(".final-*"))  # no staging left behind


# ---------------------------------------------------------------------------- one run directory, one search


def test_another_study_name_on_an_existing_run_directory_is_refused(tmp_path):
    out = tmp_path / "run"
    search("digits-mlp", "params=0.3", space=QUICK, n_trials=1, out=out, progress=False)
    before = (out / "run.json").read_text()
    with pytest.raises(RunError, match="differs in: study name"):
        search(
            "digits-mlp",
            "params=0.3",
            space=QUICK,
            n_trials=1,
            out=out,
            progress=False,
            options=SearchOptions(study_name="other"),
        )
    assert (out / "run.json").read_text() == before


def test_looking_up_a_run_that_is_not_there_creates_nothing(tmp_path):
    from autoprune.cli import main

    missing = tmp_path / "nonexistent"
    assert main(["worker", "--study", "x", "--out", str(missing)]) == 2
    assert not missing.exists()
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(
        json.dumps({"setup": {}, "study_name": "x", "storage": "journal:study.journal"})
    )
    with pytest.raises(RunError, match="no study.journal"):
        open_run(run)
    assert sorted(p.name for p in run.iterdir()) == ["run.json"]
    sqlite = tmp_path / "missing.db"
    assert main(["worker", "--study", "x", "--storage", f"sqlite:///{sqlite}"]) == 2
    assert not sqlite.exists()


def test_stale_temporary_files_of_dead_writers_are_removed_live_ones_kept(tmp_path):
    from autoprune._io import remove_stale_temporaries

    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f".pareto.png.{dead.pid}.x1y2.tmp"
    live = tmp_path / f".pareto.png.{os.getpid()}.x1y2.tmp"
    other = tmp_path / "notes.tmp"
    for path in (stale, live, other):
        path.write_text("half")
    assert remove_stale_temporaries(tmp_path) == [stale]
    assert live.exists() and other.exists() and not stale.exists()


# ---------------------------------------------------------------------------- databases


def test_a_read_only_database_is_one_line(tmp_path):
    from autoprune.cli import main

    db = tmp_path / "s.db"
    search("digits-mlp", "params=0.3", space=QUICK, n_trials=1, out=tmp_path / "a", progress=False, options=SearchOptions(storage=f"sqlite:///{db}", study_name="s"))  # fmt: skip
    url = f"sqlite:///file:{db}?mode=ro&uri=true"
    args = digits_search(2, "--quiet", "--no-finalize", "--storage", url, "--study", "s")
    with pytest.raises(RunError, match="attempt to write a readonly database"):
        main(["--debug", *args, "--out", str(tmp_path / "b")])


def test_a_trial_of_a_silent_remote_worker_is_retried_after_the_grace_period(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOPRUNE_GRACE_PERIOD", "1")
    monkeypatch.setenv("AUTOPRUNE_HEARTBEAT_INTERVAL", "1")
    url = f"sqlite:///{tmp_path / 's.db'}"
    first = search("digits-mlp", "params=0.3", space=QUICK, n_trials=2, out=tmp_path / "run", progress=False, options=SearchOptions(storage=url, study_name="s"))  # fmt: skip
    study = first.study
    study.enqueue_trial({}, skip_if_exists=False)
    storage = study._storage  # noqa: SLF001 - the test plays a remote worker that claims and dies
    waiting = storage.get_all_trials(study._study_id, states=(optuna.trial.TrialState.WAITING,))[0]
    storage.set_trial_user_attr(waiting._trial_id, "claim", "elsewhere:1:dead")
    storage.record_heartbeat(waiting._trial_id)
    storage.set_trial_state_values(waiting._trial_id, state=optuna.trial.TrialState.RUNNING)
    result = search("digits-mlp", "params=0.3", space=QUICK, n_trials=3, out=tmp_path / "run", progress=False, options=SearchOptions(storage=url, study_name="s"))  # fmt: skip
    trials = result.trials
    assert (candidates(trials).state == "COMPLETE").sum() == 3
    lost = trials[trials.number == waiting.number]
    assert lost.state.iloc[0] == "FAIL" and "heartbeats" in lost.fail_reason.iloc[0]
    assert list(trials[trials.retry_of == waiting.number].state) == ["COMPLETE"]
