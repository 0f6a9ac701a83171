"""The worker loop: claim an enqueued trial, run it, tell the study, repeat.

A study of N trials holds exactly N *slots*: enqueued (WAITING) trials, the
seed policies first. A worker claims a slot atomically (the same state change
Optuna's ``ask`` uses), so any number of workers on any storage finish exactly
N trials and never create extra ones. A trial that fails is recorded with its
reason and its slot is replaced (up to ``max_failures``); a trial left
RUNNING by a process that died is marked failed and re-queued with the same
parameters.

Example:
    >>> # run_worker(study, ctx, max_failures=40, on_trial=progress.update)
"""

from __future__ import annotations

import contextlib
import datetime
import os
import socket

import optuna
from optuna.trial import TrialState

from autoprune.search._objective import Objective, TrialFailed
from autoprune.search._run import worker_id


def count(study, *states) -> int:
    return len(study.get_trials(deepcopy=False, states=states))


def top_up_slots(study, n_trials: int) -> int:
    """Enqueue empty slots until COMPLETE + RUNNING + WAITING reaches ``n_trials``; returns how many."""
    have = count(study, TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING)
    for _ in range(max(0, n_trials - have)):
        study.enqueue_trial({}, skip_if_exists=False)
    return max(0, n_trials - have)


def progress_index(study) -> int:
    """Trials that ran to an outcome: completed ones and genuine failures, not trials lost with a dead worker.

    Lost trials are retried with the same parameters, so leaving them out keeps a
    resumed study sampling exactly what an uninterrupted one would.
    """
    trials = study.get_trials(
        deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL, TrialState.WAITING)
    )
    retried = {t.system_attrs.get("failed_trial") for t in trials} - {
        None
    }  # lost to a stopped heartbeat
    return sum(
        1
        for t in trials
        if t.state != TrialState.WAITING
        and not t.user_attrs.get("lost")
        and t.number not in retried
    )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fail_dead_trials(study, *, min_age_seconds: float = 60.0) -> list[int]:
    """Mark RUNNING trials of dead local processes as failed and re-queue their parameters."""
    host = socket.gethostname()
    now = datetime.datetime.now()
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = trial.user_attrs.get("worker", "")
        owner_host, _, pid = owner.rpartition(":")
        if owner:
            dead = owner_host == host and pid.isdigit() and not _pid_alive(int(pid))
        else:  # claimed but never labelled: dead if it has been like that for a while
            started = trial.datetime_start or now
            dead = (now - started).total_seconds() > min_age_seconds
        if not dead:
            continue
        storage = study._storage
        storage.set_trial_user_attr(
            trial._trial_id, "fail_reason", f"worker {owner or '?'} died while running it"
        )
        storage.set_trial_user_attr(trial._trial_id, "lost", True)
        storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
        study.enqueue_trial(
            dict(trial.params), user_attrs=_retry_attrs(trial), skip_if_exists=False
        )
        failed.append(trial.number)
    return failed


def _retry_attrs(trial) -> dict:
    attrs = {"retry_of": trial.number}
    if trial.user_attrs.get("seed"):
        attrs["seed"] = trial.user_attrs["seed"]
    return attrs


def _is_retry(trial) -> bool:
    """A re-queued lost trial: ours (``retry_of``) or Optuna's heartbeat retry (``failed_trial``)."""
    return "retry_of" in trial.user_attrs or "failed_trial" in trial.system_attrs


def _claim(study):
    """Atomically take a WAITING trial: retries of lost trials first, then by number."""
    study._thread_local.cached_all_trials = None
    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    waiting.sort(key=lambda t: (not _is_retry(t), t.number))
    for trial in waiting:
        try:
            if study._storage.set_trial_state_values(trial._trial_id, state=TrialState.RUNNING):
                return optuna.Trial(study, trial._trial_id)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
    return None


def _heartbeat(study, trial):
    from optuna.storages._heartbeat import get_heartbeat_thread, is_heartbeat_enabled

    if is_heartbeat_enabled(study._storage):
        return get_heartbeat_thread(trial._trial_id, study._storage)
    return contextlib.nullcontext()


def _settle(study, poll: float) -> bool:
    """No slot to claim: recover lost trials; True while other workers' trials may still need us."""
    import time

    from optuna.storages._heartbeat import fail_stale_trials, is_heartbeat_enabled

    if is_heartbeat_enabled(study._storage):
        fail_stale_trials(study)  # dead workers' trials fail and come back as retries
    else:
        fail_dead_trials(study)
    if count(study, TrialState.WAITING):
        return True
    if count(study, TrialState.RUNNING):
        time.sleep(poll)
        return True
    return False


def run_worker(
    study, ctx, *, max_failures: int, on_trial=None, sampler_for=None, poll: float = 1.0
) -> int:
    """Run claimed trials until no slot is left; returns the number this worker finished.

    ``sampler_for(progress)`` gives the sampler of the next trial: seeding it by the
    study's progress (:func:`progress_index`, not by the process) makes a resumed
    run sample what an uninterrupted one would have.
    """
    from optuna.storages._heartbeat import fail_stale_trials, is_heartbeat_enabled

    objective = Objective(ctx)
    finished = 0
    while True:
        if is_heartbeat_enabled(study._storage):
            fail_stale_trials(study)
        if sampler_for is not None:
            study.sampler = sampler_for(progress_index(study))
        trial = _claim(study)
        if trial is None:
            if _settle(study, poll):
                continue  # another worker's trial is still running: it may be lost and come back
            return finished
        trial.set_user_attr("worker", worker_id())
        try:
            with _heartbeat(study, trial):
                values = objective(trial)
        except (KeyboardInterrupt, SystemExit):
            trial.set_user_attr("fail_reason", "interrupted")
            trial.set_user_attr("lost", True)
            study.tell(trial, state=TrialState.FAIL)
            study.enqueue_trial(
                dict(trial.params), user_attrs=_retry_attrs(trial), skip_if_exists=False
            )
            raise
        except (
            Exception
        ) as exc:  # user code, NaN losses, a model that stops running: record, replace, go on
            reason = (
                f"{type(exc).__name__}: {exc}" if not isinstance(exc, TrialFailed) else str(exc)
            )
            trial.set_user_attr("fail_reason", reason.splitlines()[0][:500])
            study.tell(trial, state=TrialState.FAIL)
            if count(study, TrialState.FAIL) <= max_failures:
                study.enqueue_trial({}, user_attrs={"replaces": trial.number}, skip_if_exists=False)
        else:
            study.tell(trial, values)
            finished += 1
        if on_trial is not None:
            on_trial(study)
