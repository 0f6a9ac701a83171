"""The search: Optuna over pruning policies under a budget. The only package that imports optuna.

Example:
    >>> import autoprune
    >>> result = autoprune.search("digits-mlp", budget="params=0.3", space="quick", n_trials=4,
    ...                           out="/tmp/ap-doc-run", progress=False)      # doctest: +SKIP
    >>> result.front[["val_metric", "cost"]]                                   # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from autoprune.budgets import parse_budgets
from autoprune.errors import RunError, TaskError
from autoprune.search._context import SearchContext
from autoprune.search._results import front_of, trials_frame
from autoprune.search._run import (
    SEEDED_ATTR,
    SETUP_ATTR,
    SHARED_ATTR,
    check_feasible,
    check_setup,
    default_run_dir,
    open_storage,
    prepare_shared,
    write_run_json,
)
from autoprune.search._seeds import seed_trials
from autoprune.search._setup import SearchSetup
from autoprune.search._space import SearchSpace, available_spaces, load_space
from autoprune.search._worker import count, fail_dead_trials, run_worker, top_up_slots
from autoprune.tasks import Task, get_task


@dataclass
class SearchResult:
    """What a search leaves: the study, every trial, the front, where it all lives."""

    run_dir: Path
    study: object
    trials: pd.DataFrame
    front: pd.DataFrame
    context: SearchContext
    seconds: float  # search wall time, summed over every session that ran this run's trials

    @property
    def best(self) -> pd.Series | None:
        """The feasible fine-tuned trial with the highest validation metric (None if there is none)."""
        if self.front.empty:
            return None
        return self.front.sort_values(["val_metric", "cost"], ascending=[False, True]).iloc[0]


def _sampler(seed: int, worker_index: int = 0, progress: int = 0):
    """Multivariate TPE, seeded by (seed, worker, trials finished so far): resumable and reproducible."""
    import warnings

    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(
            seed=seed + 7919 * worker_index + 104729 * progress,
            multivariate=True,
            group=True,
            constant_liar=True,
            n_startup_trials=8,
        )


def _load_study(storage, study_name: str, seed: int, worker_index: int = 0, *, create: bool):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if create:
        return optuna.create_study(
            study_name=study_name,
            storage=storage,
            directions=["maximize", "minimize"],
            sampler=_sampler(seed, worker_index),
            load_if_exists=True,
        )
    try:
        return optuna.load_study(
            study_name=study_name, storage=storage, sampler=_sampler(seed, worker_index)
        )
    except KeyError as exc:
        raise RunError(f"No study named {study_name!r} in this storage.") from exc


def search(
    task: str | Task,
    budget,
    *,
    space: str | Path | SearchSpace | dict = "default",
    n_trials: int = 40,
    out: str | Path | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    seed: int = 0,
    n_jobs: int = 1,
    sensitivity: bool = True,
    latency_batch_size: int = 64,
    latency_threads: int = 1,
    max_failures: int | None = None,
    task_options: dict | None = None,
    backend: str = "loky",
    scheduler: str | None = None,
    device: str = "cpu",
    progress: bool = True,
) -> SearchResult:
    """Search pruning policies for ``task`` under ``budget``; resumes a run directory that exists.

    ``budget`` is ``"params=0.1"``, a list of such strings, or Budget objects.
    ``n_jobs`` worker processes run on ``backend``: ``"loky"`` (this machine) or
    ``"dask"`` (the cluster at ``scheduler``; the storage must be reachable from
    it). ``device`` is where models train and where latency is measured.
    Returns a :class:`SearchResult`; everything is also in the run directory.
    """
    from autoprune._device import resolve_device

    device = str(resolve_device(device))
    start = time.perf_counter()
    task_obj = task if isinstance(task, Task) else get_task(task, **(task_options or {}))
    budgets = parse_budgets(budget)
    space_obj = load_space(space)
    if not isinstance(n_trials, int) or isinstance(n_trials, bool) or n_trials < 1:
        raise RunError(
            f"The 'n_trials' parameter must be an integer >= 1. Got {n_trials!r} instead."
        )
    if not isinstance(n_jobs, int) or n_jobs < 1:
        raise RunError(f"The 'n_jobs' parameter must be an integer >= 1. Got {n_jobs!r} instead.")
    for name, value in (
        ("latency_batch_size", latency_batch_size),
        ("latency_threads", latency_threads),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise RunError(
                f"The '{name}' parameter must be an integer >= 1. Got {value!r} instead."
            )
    if n_jobs > 1 and not task_obj.spec:
        raise TaskError(
            "n_jobs > 1 runs workers in new processes, which find the task by name or file: "
            "pass the task as a name or 'file.py:function'."
        )
    setup = SearchSetup(
        task=task_obj.spec or task_obj.name,
        budgets=[_budget_text(b) for b in budgets],
        space=space_obj.to_dict(),
        n_trials=n_trials,
        task_options=dict(task_obj.spec_options or {}),
        seed=seed,
        sensitivity=sensitivity,
        latency_batch_size=latency_batch_size,
        latency_threads=latency_threads,
        max_failures=max_failures,
        device=device,
    )
    run_dir = Path(out) if out is not None else default_run_dir(task_obj.name, budgets)
    run_dir.mkdir(parents=True, exist_ok=True)
    check_setup(run_dir, setup)
    study_name = study_name or run_dir.name
    store = open_storage(run_dir, storage)
    study = _load_study(store, study_name, seed, create=True)
    shared = _shared(
        study,
        store,
        study_name,
        setup,
        run_dir,
        task_obj,
        progress=progress,
        backend=backend,
        scheduler=scheduler,
    )
    write_run_json(run_dir, setup, shared, study_name, storage)
    ctx = SearchContext(setup, shared, task=task_obj, device=device)
    check_feasible(ctx)
    fail_dead_trials(study)
    _seed_and_slots(study, store, study_name, ctx, n_trials)
    try:
        _run_workers(
            study,
            ctx,
            setup,
            run_dir,
            storage,
            study_name,
            n_jobs=n_jobs,
            progress=progress,
            backend=backend,
            scheduler=scheduler,
            device=device,
        )
    finally:
        seconds = _record_run(run_dir, ctx, time.perf_counter() - start)
    trials = trials_frame(study)
    front = front_of(trials)
    return SearchResult(run_dir, study, trials, front, ctx, seconds)


def _shared(
    study,
    store,
    study_name,
    setup,
    run_dir,
    task,
    *,
    progress: bool,
    backend: str = "loky",
    scheduler: str | None = None,
) -> dict:
    """The once-per-study results: prepared here, or by whichever worker claimed the set-up first."""
    from autoprune.search import _coordination as once

    while SHARED_ATTR not in study.user_attrs:
        if once.claim(store, study_name, "setup"):
            try:
                shared = prepare_shared(
                    setup, run_dir, task, progress=progress, backend=backend, scheduler=scheduler
                )
            except BaseException:  # let the next attempt (or another worker) prepare at once
                once.release(store, study_name, "setup")
                raise
            shared["prepared_by"] = _worker_id()
            study.set_user_attr(SETUP_ATTR, setup.to_dict())
            study.set_user_attr(SHARED_ATTR, shared)
            return shared
        once.wait_for(
            lambda study=study: SHARED_ATTR in _reload(study).user_attrs, store, study_name, "setup"
        )
        study = _reload(study)
    stored = SearchSetup.from_dict(study.user_attrs[SETUP_ATTR])
    if stored.differences(setup):
        raise RunError(
            f"Study {study_name!r} was set up differently (it differs in: {', '.join(stored.differences(setup))})."
        )
    if setup.n_trials > stored.n_trials:
        study.set_user_attr(SETUP_ATTR, setup.to_dict())  # the trial count may grow
    return study.user_attrs[SHARED_ATTR]


def _seed_and_slots(study, store, study_name: str, ctx: SearchContext, n_trials: int) -> None:
    """Enqueue the seeds once per study and the slots once per trial count, whoever starts first."""
    from autoprune.search import _coordination as once

    if study.user_attrs.get(SEEDED_ATTR):
        pass
    elif once.claim(store, study_name, "seeds"):
        for params, name in seed_trials(ctx)[
            :n_trials
        ]:  # the seeds are trials too: never more than asked for
            study.enqueue_trial(params, user_attrs={"seed": name}, skip_if_exists=False)
        study.set_user_attr(SEEDED_ATTR, True)
    else:
        once.wait_for(
            lambda: _reload(study).user_attrs.get(SEEDED_ATTR), store, study_name, "seeds"
        )
    if once.claim(store, study_name, f"slots-{n_trials}"):
        top_up_slots(study, n_trials)


def _reload(study):
    import optuna

    return optuna.load_study(
        study_name=study.study_name, storage=study._storage, sampler=study.sampler
    )


def _worker_id() -> str:
    from autoprune.search._run import worker_id

    return worker_id()


def _record_run(run_dir: Path, ctx: SearchContext, seconds: float) -> float:
    """Add the absolute limits and the accumulated search time to run.json; returns that time."""
    from autoprune._io import read_json, write_json

    path = run_dir / "run.json"
    run = read_json(path)
    run["limits"] = ctx.limits
    run["search_seconds"] = round(run.get("search_seconds", 0.0) + seconds, 1)
    write_json(path, run)
    return run["search_seconds"]


def open_run(run_dir: str | Path, *, task: Task | None = None) -> SearchResult:
    """The SearchResult of an existing run directory (its study, trials, front and context)."""
    from autoprune._io import read_json

    run_dir = Path(run_dir)
    path = run_dir / "run.json"
    if not path.is_file():
        raise RunError(f"{run_dir} is not a run directory: it has no run.json.")
    run = read_json(path)
    setup = SearchSetup.from_dict(run["setup"])
    url = run.get("storage")
    url = None if not url or url.startswith("journal:") else url
    study = _load_study(open_storage(run_dir, url), run["study_name"], setup.seed, create=False)
    if SHARED_ATTR not in study.user_attrs:
        raise RunError(
            f"The study of {run_dir} was never set up (its preparation did not finish); run the search again."
        )
    ctx = SearchContext(setup, study.user_attrs[SHARED_ATTR], task=task)
    trials = trials_frame(study)
    return SearchResult(
        run_dir, study, trials, front_of(trials), ctx, float(run.get("search_seconds", 0.0))
    )


def _budget_text(budget) -> str:
    kind, value = budget.kind, budget.value
    if budget.relative:
        return f"{kind}={value:g}"
    unit = {"params": "", "macs": "", "size": "B", "latency": "ms"}[kind]
    return f"{kind}={value:.10g}{unit}"


class _Progress:
    """Trials done, the best feasible fine-tuned metric so far, and the time left (tqdm's estimate)."""

    def __init__(self, study, n_trials: int, enabled: bool) -> None:
        from autoprune._progress import progress_bar

        self.n_trials = n_trials
        self.bar = progress_bar(total=n_trials, desc="search", unit="trial", enabled=enabled)
        self.update(study)

    def update(self, study) -> None:
        from optuna.trial import TrialState

        done = count(study, TrialState.COMPLETE)
        self.bar.n = min(done, self.n_trials)
        trials = trials_frame(study)
        front = front_of(trials)
        best = front.val_metric.max() if not front.empty else math.nan
        failed = int((trials.state == "FAIL").sum())
        self.bar.set_postfix_str(
            f"best feasible {best:.4f}" + (f", {failed} failed" if failed else ""), refresh=False
        )
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


def _run_workers(
    study,
    ctx,
    setup,
    run_dir,
    storage,
    study_name,
    *,
    n_jobs: int,
    progress: bool,
    backend: str = "loky",
    scheduler: str | None = None,
    device: str | None = None,
) -> None:
    """Run the trials: in this process, or in ``n_jobs`` worker processes (local, or on a Dask cluster)."""
    import threading

    import joblib

    from autoprune._parallel import joblib_backend

    bar = _Progress(study, setup.n_trials, progress)
    try:
        if n_jobs == 1 and backend == "loky":
            run_worker(
                study,
                ctx,
                max_failures=setup.failure_allowance,
                on_trial=bar.update,
                sampler_for=lambda done: _sampler(setup.seed, 0, done),
            )
            return
        threads = max(1, (os.cpu_count() or 1) // n_jobs) if backend == "loky" else None
        jobs = [
            joblib.delayed(worker_main)(
                str(Path(run_dir).resolve()), storage, study_name, i, threads, device
            )
            for i in range(n_jobs)
        ]
        errors: list[BaseException] = []

        def run() -> None:
            try:
                with joblib_backend(backend, scheduler):
                    joblib.Parallel(n_jobs=n_jobs)(jobs)
            except BaseException as exc:  # reported below, in the main thread
                errors.append(exc)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        while thread.is_alive():
            thread.join(timeout=1.0)
            bar.update(study)
        if errors:
            raise RunError(
                f"A worker failed ({type(errors[0]).__name__}: {errors[0]}); "
                "the study keeps the trials that finished."
            ) from errors[0]
    finally:
        bar.update(study)
        bar.close()


def worker_main(
    run_dir: str,
    storage: str | None,
    study_name: str,
    worker_index: int = 0,
    threads: int | None = None,
    device: str | None = None,
) -> int:
    """Join a prepared study and run trials until no slot is left (also ``autoprune worker``)."""
    import torch

    from autoprune.introspect import torch_threads

    quiet = "AUTOPRUNE_NO_PROGRESS" not in os.environ
    if quiet:
        os.environ["AUTOPRUNE_NO_PROGRESS"] = "1"  # a worker in a pool has no terminal of its own
    try:
        with torch_threads(threads or torch.get_num_threads()):
            return _work(run_dir, storage, study_name, worker_index, device)
    finally:
        if quiet:
            os.environ.pop("AUTOPRUNE_NO_PROGRESS", None)


def _work(
    run_dir: str, storage: str | None, study_name: str, worker_index: int, device: str | None
) -> int:
    store = open_storage(Path(run_dir), storage)
    probe = _load_study(store, study_name, 0, create=False)
    if SETUP_ATTR not in probe.user_attrs:
        raise RunError(f"Study {study_name!r} has not been set up by 'autoprune search' yet.")
    setup = SearchSetup.from_dict(probe.user_attrs[SETUP_ATTR])
    study = _load_study(store, study_name, setup.seed, worker_index + 1, create=False)
    ctx = SearchContext(setup, study.user_attrs[SHARED_ATTR], device=device)
    return run_worker(
        study,
        ctx,
        max_failures=setup.failure_allowance,
        sampler_for=lambda done: _sampler(setup.seed, worker_index + 1, done),
    )


__all__ = [
    "SearchContext",
    "SearchResult",
    "SearchSetup",
    "SearchSpace",
    "available_spaces",
    "front_of",
    "load_space",
    "open_run",
    "search",
    "trials_frame",
    "worker_main",
]
