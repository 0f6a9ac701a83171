"""A study's life: open it, prepare it once, keep its queue whole.

Every step that must happen once per study runs under the study's lock
(:mod:`autoprune.search._lock`) and first checks what is already done, so any
number of processes may start together and any of them may be killed at any
moment: the next one to hold the lock finishes the step.

1. :func:`ensure_prepared`: the dense model, sensitivity analysis and latency
   samples (:func:`~autoprune.search._prepare.prepare_study`), stored with the
   study's setup in its user attributes;
2. :func:`fill_queue`: lost trials failed and re-queued first, then the seed
   policies not yet queued, then empty slots up to the trial count.

Example:
    >>> import tempfile, pathlib
    >>> from autoprune.search._storage import open_storage
    >>> store = open_storage(pathlib.Path(tempfile.mkdtemp()), None, create=True)
    >>> study = open_study(store, "demo", create=True)
    >>> setup = SearchSetup(task="digits-mlp", budgets=["params=0.3"], space={}, n_trials=2)
    >>> made = PreparedStudy(device="cpu", dense={}, dense_digest="ab", dense_costs={})
    >>> ensure_prepared(study, store, setup, lambda: made, quiet=True).dense_digest
    'ab'
    >>> fill_queue(study, store, lambda: [({}, "uniform")], n_trials=2, quiet=True)
    >>> [t.user_attrs.get("seed") for t in study.trials]
    ['uniform', None]
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from autoprune.errors import RunError
from autoprune.search._lock import study_lock
from autoprune.search._prepare import PreparedStudy
from autoprune.search._setup import SearchSetup
from autoprune.search._worker import WorkerId, fail_lost_trials, top_up_slots

SETUP_ATTR = "autoprune:setup"
PREPARED_ATTR = "autoprune:shared"
SEEDED_ATTR = "autoprune:seeded"


def open_study(store, study_name: str, *, create: bool):
    """The Optuna study ``study_name`` in ``store`` (created when ``create``)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if create:
        return optuna.create_study(
            study_name=study_name,
            storage=store.storage,
            directions=["maximize", "minimize"],
            load_if_exists=True,
        )
    try:
        return optuna.load_study(study_name=study_name, storage=store.storage)
    except KeyError as exc:
        raise RunError(f"No study named {study_name[:200]!r} in this storage.") from exc


def _waiting_line(study_name: str, what: str, quiet: bool) -> Callable[[], None]:
    def say() -> None:
        if not quiet:
            print(f"waiting for another process to {what} of study {study_name!r}", file=sys.stderr)

    return say


def stored_setup(study) -> SearchSetup | None:
    data = study.user_attrs.get(SETUP_ATTR)
    return None if data is None else SearchSetup.from_dict(data)


def stored_preparation(study) -> PreparedStudy | None:
    data = study.user_attrs.get(PREPARED_ATTR)
    return None if data is None else PreparedStudy.from_dict(data)


def ensure_prepared(
    study,
    store,
    setup: SearchSetup,
    prepare: Callable[[], PreparedStudy],
    *,
    quiet: bool = False,
) -> PreparedStudy:
    """The study's preparation: made now under the lock, or read back from whoever made it."""
    from dataclasses import replace

    with study_lock(
        store, study.study_name, on_wait=_waiting_line(study.study_name, "prepare", quiet)
    ):
        prepared = stored_preparation(study)
        if prepared is None:
            prepared = replace(prepare(), prepared_by=WorkerId.here().label)
            study.set_user_attr(SETUP_ATTR, setup.to_dict())
            study.set_user_attr(PREPARED_ATTR, prepared.to_dict())
            return prepared
        stored = stored_setup(study)
        differences = stored.differences(setup)
        if differences:
            raise RunError(
                f"Study {study.study_name!r} was set up differently (it differs in: {', '.join(differences)})."
            )
        if setup.n_trials > stored.n_trials:
            study.set_user_attr(SETUP_ATTR, setup.to_dict())  # the trial count may grow
        return prepared


def fill_queue(
    study,
    store,
    seeds: Callable[[], list[tuple[dict, str]]],
    n_trials: int,
    *,
    quiet: bool = False,
) -> None:
    """Re-queue lost trials, queue the seeds not yet queued, top up the slots to ``n_trials``.

    ``seeds()`` gives ``(params, name)`` pairs; it is called only while some are
    missing. Seeds are never more than the trials asked for.
    """
    with study_lock(
        store, study.study_name, on_wait=_waiting_line(study.study_name, "queue the trials", quiet)
    ):
        fail_lost_trials(study, store, WorkerId.here())
        if not study.user_attrs.get(SEEDED_ATTR):
            queued = {
                t.user_attrs.get("seed")
                for t in study.get_trials(deepcopy=False)
                if "retry_of" not in t.user_attrs
            }
            for params, name in seeds()[:n_trials]:
                if name not in queued:
                    study.enqueue_trial(params, user_attrs={"seed": name}, skip_if_exists=False)
            study.set_user_attr(SEEDED_ATTR, True)
        top_up_slots(study, n_trials)


def recovery_picks(study, space) -> list[tuple[int, str]]:
    """The recoveries to run, as (candidate, schedule): the best ``recovery.top`` at the budget
    and the best at every other level, under the space's first schedule; the best at the budget
    also under each other schedule the space lists (the schedule is searched on it).

    Best by fitness among feasible confirmed candidates; one policy is picked once.
    """
    from autoprune.search._evolution import confirmed

    picks, seen = [], set()
    for level in space.levels:
        wanted = space.recovery.top if level == space.levels[0] else min(1, space.recovery.top)
        taken = 0
        for trial in confirmed(study, level):
            key = repr(trial.user_attrs.get("policy"))
            if taken >= wanted:
                break
            if key not in seen:
                seen.add(key)
                picks.append((trial.number, space.schedules[0]))
                taken += 1
    if picks:
        picks[1:1] = [(picks[0][0], name) for name in space.schedules[1:]]
    return picks


def queue_recoveries(study, store, space, *, quiet: bool = False) -> int:
    """Queue a recovery trial for every pick not recovered yet (lock-guarded); returns how many."""
    say = _waiting_line(study.study_name, "queue the recoveries", quiet)
    with study_lock(store, study.study_name, on_wait=say):
        done = {
            (t.user_attrs["recover_of"], t.user_attrs.get("schedule", space.schedules[0]))
            for t in study.get_trials(deepcopy=False)
            if "recover_of" in t.user_attrs
        }
        new = [pick for pick in recovery_picks(study, space) if pick not in done]
        for number, schedule in new:
            attrs = {"recover_of": number, "schedule": schedule}
            study.enqueue_trial({}, user_attrs=attrs, skip_if_exists=False)
        return len(new)
