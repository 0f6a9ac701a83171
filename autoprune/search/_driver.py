"""``search()`` from top to bottom, ``worker_main()`` for the processes that join it, ``open_run()``.

1. check the arguments and the run directory (nothing is written for bad input);
2. open (or create) the study and prepare it once: dense model, sensitivity,
   latency samples (:func:`~autoprune.search._study.ensure_prepared`);
3. build the shared context, check that the budget can be met;
4. re-queue lost trials, queue the heuristic seeds and the candidate slots
   (:func:`~autoprune.search._study.fill_queue`);
5. run the candidates here, or in ``n_jobs`` worker processes: each is scored
   without training;
6. queue the recovery of the best confirmed candidates and run it;
7. record the search time, return the trials and the front.

Example:
    >>> import tempfile
    >>> result = search("digits-mlp", "params=0.3", space="quick", n_trials=6,
    ...                 out=tempfile.mkdtemp(), progress=False)
    >>> result.trials.fidelity.isin(["scored", "confirmed"]).sum(), (result.trials.fidelity == "recovered").sum()
    (np.int64(6), np.int64(3))
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from autoprune._io import remove_stale_temporaries
from autoprune._validation import Interval, validate_params
from autoprune.budgets import parse_budgets
from autoprune.errors import RunError, TaskError
from autoprune.search._context import SearchContext
from autoprune.search._feasible import check_feasible
from autoprune.search._options import SearchOptions
from autoprune.search._prepare import prepare_study
from autoprune.search._progress import SearchProgress
from autoprune.search._results import SearchResult, front_of, trials_frame
from autoprune.search._rundir import (
    check_run_dir,
    default_run_dir,
    read_run,
    record_run_time,
    write_run_json,
)
from autoprune.search._seeds import seed_trials
from autoprune.search._setup import SearchSetup
from autoprune.search._space import SearchSpace, load_space
from autoprune.search._storage import open_storage, storage_errors
from autoprune.search._study import (
    ensure_prepared,
    fill_queue,
    open_study,
    queue_recoveries,
    stored_preparation,
    stored_setup,
)
from autoprune.search._worker import run_worker
from autoprune.tasks import Task, get_task


@storage_errors
@validate_params(
    {"n_trials": Interval(int, 1, None), "seed": Interval(int, 0, 2**32, closed="left")}
)
def search(
    task: str | Task,
    budget,
    *,
    space: str | Path | SearchSpace | dict = "default",
    n_trials: int = 200,
    out: str | Path | None = None,
    seed: int = 0,
    options: SearchOptions | None = None,
    progress: bool = True,
) -> SearchResult:
    """Search pruning policies for ``task`` under ``budget``; resumes a run directory that exists.

    ``budget`` is ``"params=0.1"``, a list of such strings, or Budget objects;
    ``options`` says where and how the search runs (storage, workers, device,
    latency conditions: :class:`SearchOptions`). Returns a :class:`SearchResult`;
    everything is also in the run directory (``out``, default
    ``results/runs/<task>-<budget>``).
    """
    start = time.perf_counter()
    options = options or SearchOptions()
    task_obj = task if isinstance(task, Task) else get_task(task, **options.task_options)
    setup = _setup(task_obj, budget, space, n_trials, seed, options)
    if options.n_jobs > 1 and not task_obj.spec:
        raise TaskError(
            "n_jobs > 1 runs workers in new processes, which find the task by name or file: "
            "pass the task as a name or 'file.py:function'."
        )
    run_dir = Path(out) if out is not None else default_run_dir(task_obj.name, setup.budgets)
    study_name = options.study_name or run_dir.name
    check_run_dir(run_dir, setup, study_name, options.storage)
    if run_dir.is_dir():
        remove_stale_temporaries(run_dir)  # what a killed earlier session left half-written
    store = open_storage(run_dir, options.storage, create=True)
    study = open_study(store, study_name, create=True)
    prepared = ensure_prepared(
        study,
        store,
        setup,
        lambda: prepare_study(
            setup,
            run_dir,
            task_obj,
            progress=progress,
            backend=options.backend,
            scheduler=options.scheduler,
        ),  # fmt: skip
        quiet=not progress,
    )
    write_run_json(run_dir, setup, prepared, study_name, options.storage)
    ctx = SearchContext.load(setup, prepared, task=task_obj, device=setup.device)
    check_feasible(ctx)
    fill_queue(study, store, lambda: seed_trials(ctx), n_trials, quiet=not progress)
    try:
        _run_trials(study, store, ctx, run_dir, study_name, options, progress)
        queue_recoveries(study, store, ctx.space, quiet=not progress)
        _run_trials(study, store, ctx, run_dir, study_name, options, progress)
    finally:
        seconds = record_run_time(run_dir, ctx.limits, time.perf_counter() - start)
    trials = trials_frame(study)
    return SearchResult(run_dir, study, trials, front_of(trials), ctx, seconds)


def _setup(task: Task, budget, space, n_trials: int, seed: int, options: SearchOptions):
    """The plain-data setup of a search, every argument checked."""
    from autoprune._device import resolve_device

    return SearchSetup(
        task=task.spec or task.name,
        budgets=[_budget_text(b) for b in parse_budgets(budget)],
        space=load_space(space).to_dict(),
        n_trials=n_trials,
        task_options=dict(task.spec_options or {}),
        seed=seed,
        sensitivity=options.sensitivity,
        latency_batch_size=options.latency_batch_size,
        latency_threads=options.latency_threads,
        max_failures=options.max_failures,
        device=str(resolve_device(options.device)),
    )


def _run_trials(study, store, ctx, run_dir, study_name, options: SearchOptions, progress) -> None:
    """Run the trials here, or in ``options.n_jobs`` worker processes; a progress bar meanwhile."""
    bar = SearchProgress(
        study, ctx.setup.n_trials + ctx.space.recovery.top + len(ctx.space.levels) - 1, progress
    )
    try:
        if options.n_jobs == 1 and options.backend == "loky":
            run_worker(
                study, store, ctx, seed=ctx.setup.seed,
                max_failures=ctx.setup.failure_allowance, on_trial=bar.update,
            )  # fmt: skip
        else:
            _run_pool(run_dir, study_name, options, bar, study)
    finally:
        bar.update(study)
        bar.close()


def _budget_text(budget) -> str:
    kind, value = budget.kind, budget.value
    if budget.relative:
        return f"{kind}={value:g}"
    unit = {"params": "", "macs": "", "size": "B", "latency": "ms"}[kind]
    return f"{kind}={value:.10g}{unit}"


def _run_pool(run_dir, study_name: str, options: SearchOptions, bar, study) -> None:
    """Run ``options.n_jobs`` worker processes (local or on a Dask cluster), updating the bar."""
    import threading

    import joblib

    from autoprune._parallel import joblib_backend

    n_jobs, local = options.n_jobs, options.backend == "loky"
    threads = max(1, (os.cpu_count() or 1) // n_jobs) if local else None
    job = joblib.delayed(worker_main)
    args = (str(Path(run_dir).resolve()), options.storage, study_name, threads, options.device)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with joblib_backend(options.backend, options.scheduler):
                joblib.Parallel(n_jobs=n_jobs)(job(*args) for _ in range(n_jobs))
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


@storage_errors
def worker_main(
    run_dir: str,
    storage: str | None,
    study_name: str,
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
            store = open_storage(Path(run_dir), storage, create=False)
            study = open_study(store, study_name, create=False)
            setup, prepared = stored_setup(study), stored_preparation(study)
            if setup is None or prepared is None:
                raise RunError(
                    f"Study {study_name[:200]!r} has not been set up by 'autoprune search' yet."
                )
            ctx = SearchContext.load(setup, prepared, device=device)
            return run_worker(
                study, store, ctx, seed=setup.seed, max_failures=setup.failure_allowance
            )
    finally:
        if quiet:
            os.environ.pop("AUTOPRUNE_NO_PROGRESS", None)


@storage_errors
def open_run(run_dir: str | Path, *, task: Task | None = None) -> SearchResult:
    """The SearchResult of an existing run directory (its study, trials, front and context)."""
    run_dir = Path(run_dir)
    run = read_run(run_dir)
    url = run.get("storage")
    url = None if not url or url.startswith("journal:") else url
    store = open_storage(run_dir, url, create=False)
    study = open_study(store, run["study_name"], create=False)
    prepared = stored_preparation(study)
    if prepared is None:
        raise RunError(
            f"The study of {run_dir} was never set up (its preparation did not finish); run the search again."
        )
    ctx = SearchContext.load(SearchSetup.from_dict(run["setup"]), prepared, task=task)
    trials = trials_frame(study)
    return SearchResult(
        run_dir, study, trials, front_of(trials), ctx, float(run.get("search_seconds", 0.0))
    )
