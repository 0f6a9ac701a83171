"""Per-unit sensitivity: prune each unit alone at a grid of amounts, measure the damage.

1. check the arguments; cut the task to the data the analysis touches and key
   the run (:class:`~autoprune.sensitivity._measurement.Measurement`);
2. measure the dense model once (the reference every drop is taken from);
3. measure every unit at every amount (:mod:`autoprune.sensitivity._point`), in
   this process or in joblib workers (local processes or a Dask cluster);
4. return the tidy table as a :class:`~autoprune.sensitivity.Sensitivity`.

Every (unit, amount) point is cached as a small JSON file (never pickle) under a
key made of the model's class and weights, the task (name, loss, metric, split),
the data, the criterion, the granularity, the amount and the seed, so a second
run is instant and a changed model, loss or data set is never served stale
results. A damaged cache file is a miss: the point is recomputed and the file
rewritten.

Example (an untrained model, to be quick):
    >>> from autoprune.tasks import get_task
    >>> task = get_task("digits-mlp")
    >>> sens = analyse_sensitivity(task.new_model(), task, grid=(0.5, 0.9), val_items=100,
    ...                            options=SensitivityOptions(cache=False, progress=False))
    >>> list(sens.table.columns)[:4], sens.units
    (['layer', 'sparsity', 'criterion', 'granularity'], ['fc1', 'fc2', 'fc3'])
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

import pandas as pd
from torch import nn

from autoprune._validation import Interval, Options, validate_params
from autoprune.policy import CRITERIA, CRITERION_ALIASES
from autoprune.sensitivity._cache import PointCache
from autoprune.sensitivity._measurement import (
    DEFAULT_GRID,
    GRANULARITIES,
    Measurement,
    check_grid,
    sensitivity_units,
)
from autoprune.sensitivity._options import SensitivityOptions
from autoprune.sensitivity._point import cached_point, unit_curve
from autoprune.sensitivity._result import Sensitivity
from autoprune.tasks import Task


@validate_params(
    {
        "criterion": Options(CRITERIA + tuple(CRITERION_ALIASES)),
        "granularity": Options(GRANULARITIES),
        "val_items": Interval(int, 1, None),
    }
)
def analyse_sensitivity(
    model: nn.Module,
    task: Task,
    *,
    criterion: str = "l1",
    granularity: str = "unstructured",
    grid: Sequence[float] = DEFAULT_GRID,
    val_items: int = 2000,
    seed: int = 0,
    options: SensitivityOptions | None = None,
) -> Sensitivity:
    """Measure every unit of ``model`` alone at each amount of ``grid`` (see the module docstring).

    ``val_items`` validation items (a seeded subset) score each point; ``options``
    say how the analysis runs (workers, cache, progress bar:
    :class:`SensitivityOptions`), which never changes the table.
    """
    options = options or SensitivityOptions()
    criterion = CRITERION_ALIASES.get(criterion, criterion)
    grid = check_grid(grid)
    start = time.perf_counter()
    m = Measurement.of(
        model, task, criterion=criterion, granularity=granularity, val_items=val_items, seed=seed
    )
    units = sensitivity_units(model, m.task, granularity)
    store = options.point_cache()
    dense = cached_point(store, m, "(dense)", 0.0)
    cached_before = (
        store.count([m.fields(u, a) for u in units for a in grid]) if store is not None else 0
    )
    table = pd.DataFrame(_curves(store, m, units, grid, options))
    table["drop"] = dense["metric"] - table["metric"]
    table["loss_increase"] = table["loss"] - dense["loss"]
    return Sensitivity(
        table=table,
        dense_metric=dense["metric"],
        dense_loss=dense["loss"],
        criterion=criterion,
        granularity=granularity,
        grid=grid,
        metric_name=task.metric_name,
        seconds=time.perf_counter() - start,
        cached_points=cached_before,
        total_points=len(units) * len(grid),
    )


def _curves(
    store: PointCache | None,
    m: Measurement,
    units: list[str],
    grid: tuple[float, ...],
    options: SensitivityOptions,
) -> list[dict]:
    """The rows of every unit's curve, in the order of ``units``, with a progress bar."""
    import joblib

    from autoprune._progress import progress_bar

    threads = 1 if options.parallel else None  # parallel workers: one thread each
    jobs = [joblib.delayed(unit_curve)(store, m, u, grid, threads) for u in units]
    bar = progress_bar(
        total=len(units),
        desc=f"sensitivity ({m.granularity}, {m.criterion})",
        unit="layer",
        enabled=options.progress,
    )
    rows: list[dict] = []
    for curve in _run(jobs, options):
        rows.extend(curve)
        bar.update(1)
    bar.close()
    return rows


def _run(jobs: list, options: SensitivityOptions) -> Iterator[list[dict]]:
    """The results of ``jobs`` in order: here, or in joblib workers when ``options`` ask for them."""
    import joblib

    if not options.parallel:
        for fn, args, kwargs in jobs:
            yield fn(*args, **kwargs)
        return
    from autoprune._parallel import joblib_backend

    with joblib_backend(options.backend, options.scheduler) as cluster_workers:
        n_jobs = options.n_jobs
        workers = cluster_workers or n_jobs if options.backend == "dask" else n_jobs
        yield from joblib.Parallel(n_jobs=workers, return_as="generator")(jobs)
