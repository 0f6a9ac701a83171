"""The worker loop: claim a queued trial, run it, tell the study, repeat.

A study of N trials holds exactly N *slots*: queued (WAITING) trials, the seed
policies first. A worker claims a slot with the same atomic state change
Optuna's ``ask`` uses, so any number of workers on any storage finish exactly N
trials. A trial that fails is recorded with its reason and its slot replaced
(up to ``max_failures``).

A trial whose worker died is *lost*: it is marked failed and retried before any
new trial. Before claiming, a worker writes its token on the trial
(``claim:<token>``), so a trial whose worker was killed right after the claim is
still recognised: lost when every process that tried to claim it is gone. With
a database, running trials also send heartbeats, and a trial silent for the
grace period is lost too (:func:`requeue_stale`).

Every trial samples from its own stream, seeded by the study's seed and its
slot (a retry inherits the slot of the trial it retries): two processes never
draw the same stream, and a killed-and-resumed run draws exactly what an
uninterrupted one would have.

Example:
    >>> sampler_seed(0, 3) != sampler_seed(0, 4) != sampler_seed(1, 3)
    True
"""

from __future__ import annotations

import contextlib
import datetime
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

from autoprune._io import pid_alive
from autoprune.search._objective import Objective, TrialFailed

CLAIM_PREFIX = "claim:"
UNLABELLED_SECONDS = 60.0


@dataclass(frozen=True)
class WorkerId:
    """Who runs a trial: ``label`` (host:pid, shown in reports) and a token unique to this worker."""

    host: str
    pid: int
    token: str

    @classmethod
    def here(cls) -> WorkerId:
        host, pid = socket.gethostname(), os.getpid()
        return cls(host, pid, f"{host}:{pid}:{uuid.uuid4().hex[:8]}")

    @property
    def label(self) -> str:
        return f"{self.host}:{self.pid}"


def sampler_seed(seed: int, slot: int) -> int:
    """The seed of a trial's sampler: one stream per (study seed, slot)."""
    return (seed * 1_000_003 + 7919 * (slot + 1)) % 2**32


def count(study, *states) -> int:
    return len(study.get_trials(deepcopy=False, states=states))


def slot_of(trial) -> int:
    """The sampler stream of a trial: its own number, or that of the lost trial it retries."""
    return int(trial.user_attrs.get("slot", trial.number))


def top_up_slots(study, n_trials: int) -> int:
    """Enqueue empty candidate slots until COMPLETE + RUNNING + WAITING candidates reach ``n_trials``."""
    alive = (TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING)
    have = sum(
        1
        for t in study.get_trials(deepcopy=False, states=alive)
        if "recover_of" not in t.user_attrs
    )
    for _ in range(max(0, n_trials - have)):
        study.enqueue_trial({}, skip_if_exists=False)
    return max(0, n_trials - have)


def genuine_failures(study) -> int:
    """Failed trials that ran to a failure (not trials lost with their worker)."""
    retried = {t.user_attrs.get("retry_of") for t in study.get_trials(deepcopy=False)}
    return sum(
        1
        for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
        if not t.user_attrs.get("lost") and t.number not in retried
    )


def requeue(study, trial, **attrs) -> None:
    """Queue the retry of a lost trial, first in line and in the lost trial's sampler stream.

    A trial lost after its parameters were all drawn (it recorded its policy) is
    retried with them; one lost while they were being drawn is retried with only
    what its slot was queued with, and draws the rest again from the same stream.
    """
    params = (
        dict(trial.params)
        if "policy" in trial.user_attrs
        else dict(trial.system_attrs.get("fixed_params", {}))
    )
    keep = {
        k: trial.user_attrs[k] for k in ("seed", "recover_of", "schedule") if k in trial.user_attrs
    }
    study.enqueue_trial(
        params,
        user_attrs={**keep, "retry_of": trial.number, "slot": slot_of(trial), **attrs},
        skip_if_exists=False,
    )


def requeue_stale(study, trial) -> None:
    """Heartbeat callback of a database storage: a trial silent for too long is retried."""
    requeue(study, trial, lost_reason="its worker stopped sending heartbeats")


def _owner_gone(token: str, me: WorkerId) -> bool:
    """True when the worker with ``token`` cannot be running a trial now (this idle worker, or dead here)."""
    if token == me.token:
        return True  # this worker is idle: whatever it labelled is not running any more
    host, _, rest = token.partition(":")
    pid = rest.partition(":")[0]
    if host != me.host or not pid.isdigit():
        return False  # another machine: its heartbeats tell
    return not pid_alive(int(pid))


def is_lost(trial, me: WorkerId, *, unlabelled_after: float = UNLABELLED_SECONDS) -> bool:
    """A RUNNING trial whose worker is gone: the claimant that won it, or every one that tried.

    A trial some other program started (no claim written, only a ``worker``
    label or none at all) is judged by its label, or lost once it is
    ``unlabelled_after`` seconds old.
    """
    owner = trial.user_attrs.get("claim")
    if owner:
        return _owner_gone(owner, me)
    claimants = [k[len(CLAIM_PREFIX) :] for k in trial.user_attrs if k.startswith(CLAIM_PREFIX)]
    if not claimants and trial.user_attrs.get("worker"):
        claimants = [trial.user_attrs["worker"]]  # host:pid, as other writers label
    if claimants:
        return all(_owner_gone(c, me) for c in claimants)
    started = trial.datetime_start or datetime.datetime.now()
    return (datetime.datetime.now() - started).total_seconds() > unlabelled_after


def fail_lost_trials(study, store, me: WorkerId) -> list[int]:
    """Mark lost RUNNING trials failed and queue their retries; returns their numbers.

    Two workers may find the same lost trial: only the one whose state change
    succeeds queues the retry.
    """
    storage, failed = store.storage, []
    study_id = storage.get_study_id_from_name(study.study_name)
    for trial in storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
        if not is_lost(trial, me):
            continue
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        owner = trial.user_attrs.get("worker", "?")
        try:
            storage.set_trial_user_attr(
                trial_id, "fail_reason", f"worker {owner} died while running it"
            )
            storage.set_trial_user_attr(trial_id, "lost", True)
            storage.set_trial_state_values(trial_id, state=TrialState.FAIL)
        except UpdateFinishedTrialError:
            continue  # another worker failed it first, and queues its retry
        requeue(study, trial)
        failed.append(trial.number)
    return failed


def claim(study, store, me: WorkerId):
    """Take a queued trial (retries of lost trials first); returns (trial_id, FrozenTrial) or None."""
    storage = store.storage
    study_id = storage.get_study_id_from_name(study.study_name)
    waiting = storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.WAITING,))
    waiting.sort(key=lambda t: ("retry_of" not in t.user_attrs, t.number))
    for frozen in waiting:
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, frozen.number)
        try:
            storage.set_trial_user_attr(trial_id, CLAIM_PREFIX + me.token, True)
            if (
                store.heartbeat
            ):  # a first heartbeat before the claim: a worker that dies next is seen
                storage.record_heartbeat(trial_id)
            if storage.set_trial_state_values(trial_id, state=TrialState.RUNNING):
                storage.set_trial_user_attr(trial_id, "claim", me.token)
                storage.set_trial_user_attr(trial_id, "worker", me.label)
                return trial_id, frozen
        except UpdateFinishedTrialError:
            continue
    return None


@contextlib.contextmanager
def heartbeat(store, trial_id: int):
    """Send the running trial's heartbeats while the block runs (database storages only)."""
    if not store.heartbeat:
        yield
        return
    storage, stop = store.storage, threading.Event()
    interval = storage.get_heartbeat_interval()

    def beat() -> None:
        while True:
            storage.record_heartbeat(trial_id)
            if stop.wait(interval):
                return

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _settle(study, store, me: WorkerId, poll: float) -> bool:
    """No slot to claim: recover lost trials; True while other workers' trials may still need us."""
    if store.heartbeat:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
    fail_lost_trials(study, store, me)
    if count(study, TrialState.WAITING):
        return True
    if count(study, TrialState.RUNNING):
        time.sleep(poll)
        return True
    return False


def run_worker(
    study, store, ctx, *, seed: int, max_failures: int, on_trial=None, poll: float = 1.0
) -> int:
    """Run claimed trials until no slot is left; returns the number this worker finished."""
    from autoprune.search._evolution import evolution_space, make_sampler

    space = evolution_space(ctx)
    me = WorkerId.here()
    objective = Objective(ctx)
    finished = 0
    while True:
        claimed = claim(study, store, me)
        if claimed is None:
            if _settle(study, store, me, poll):
                continue  # another worker's trial is still running: it may be lost and come back
            return finished
        trial_id, frozen = claimed
        study.sampler = make_sampler(space, seed, slot_of(frozen))
        trial = optuna.Trial(study, trial_id)
        finished += _run_one(study, store, trial, trial_id, objective, max_failures)
        if on_trial is not None:
            on_trial(study)


def _run_one(study, store, trial, trial_id: int, objective, max_failures: int) -> int:
    """Run one claimed trial and tell the study; returns 1 if it completed."""
    try:
        with heartbeat(store, trial_id):
            values = objective(trial)
    except (KeyboardInterrupt, SystemExit):
        trial.set_user_attr("fail_reason", "interrupted")
        trial.set_user_attr("lost", True)
        study.tell(trial, state=TrialState.FAIL)
        requeue(study, study.get_trials(deepcopy=False)[trial.number])
        raise
    except Exception as exc:  # user code, NaN losses, a model that stops running: record, replace
        reason = f"{type(exc).__name__}: {exc}" if not isinstance(exc, TrialFailed) else str(exc)
        trial.set_user_attr("fail_reason", reason.splitlines()[0][:500])
        study.tell(trial, state=TrialState.FAIL)
        if genuine_failures(study) <= max_failures:
            study.enqueue_trial({}, user_attrs={"replaces": trial.number}, skip_if_exists=False)
        return 0
    study.tell(trial, values)
    return 1
