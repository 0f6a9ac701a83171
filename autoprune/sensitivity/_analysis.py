"""Per-layer sensitivity: prune one unit alone at a grid of amounts, measure the damage.

A unit is a prunable layer (unstructured) or a dependency group (structured:
layers coupled by a residual addition or a shared BatchNorm lose channels
together, so they are measured together). Every other layer stays dense.
After pruning, BatchNorm is recalibrated when the model has it, and the model
is evaluated on a seeded validation subset.

Units run in parallel with joblib; every (unit, amount) point is cached as a
small JSON file (:mod:`autoprune.sensitivity._cache`, never pickle) under a key
made of the model's class and weights, the task (name, loss, metric, split), the
data, the criterion, the granularity, the amount and the seed, so a second run is
instant and a changed model, loss or data set is never served stale results. A
damaged cache file is a miss: the point is recomputed and the file rewritten.

Example (an untrained model, to be quick):
    >>> from autoprune.tasks import get_task
    >>> task = get_task("digits-mlp")
    >>> sens = analyse_sensitivity(task.new_model(), task, grid=(0.5, 0.9), val_items=100,
    ...                            cache=False, progress=False)
    >>> list(sens.table.columns)[:4], sens.units
    (['layer', 'sparsity', 'criterion', 'granularity'], ['fc1', 'fc2', 'fc3'])
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from autoprune._validation import Interval, Options, validate_params
from autoprune.errors import AutopruneError
from autoprune.introspect import prunable_layers
from autoprune.policy import (
    AMOUNT_FIELD,
    CRITERIA,
    CRITERION_ALIASES,
    FinetuneRecipe,
    LayerPolicy,
    Policy,
)
from autoprune.sensitivity._cache import PointCache, normalise_row, point_fields
from autoprune.sensitivity._result import Sensitivity
from autoprune.tasks import Task
from autoprune.tasks._data import dataset_digest, take

DEFAULT_GRID = (0.1, 0.3, 0.5, 0.7, 0.9)
GRANULARITIES = ("unstructured", "structured")
CACHE_VERSION = "2"  # bump when evaluate_point changes what it computes: old points then miss


def check_grid(grid) -> tuple[float, ...]:
    """A sorted tuple of distinct amounts in (0, 1); errors name the bad value."""
    try:
        values = [float(v) for v in grid]
    except (TypeError, ValueError):
        raise AutopruneError(
            f"The 'grid' parameter must be a list of numbers in (0, 1). Got {grid!r} instead."
        ) from None
    if not values:
        raise AutopruneError(
            "The 'grid' parameter must hold at least one amount in (0, 1). Got an empty grid."
        )
    bad = [v for v in values if not 0.0 < v < 1.0]
    if bad:
        raise AutopruneError(
            f"The 'grid' parameter must hold amounts in (0, 1). Got {bad[0]!r} instead."
        )
    return tuple(sorted(set(values)))


def sensitivity_units(model: nn.Module, task: Task, granularity: str) -> list[str]:
    """Names of the units measured: layers, or dependency groups for structured pruning."""
    if granularity == "structured":
        from autoprune.prune import structured_units

        return list(structured_units(copy.deepcopy(model), task.example_input).groups)
    return list(prunable_layers(model))


def weights_digest(model: nn.Module) -> str:
    """A hash of every tensor of the state_dict (names, shapes and values)."""
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(str(tuple(tensor.shape)).encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:20]


def _light_task(task: Task, *, val_items: int, train_items: int, seed: int) -> Task:
    """The task with only the data the analysis touches (cheap to send to workers)."""
    val = take(task.val_data, val_items, seed=seed)
    return dataclasses.replace(
        task,
        train_data=take(task.train_data, train_items, seed=seed),
        val_data=val,
        test_data=take(val, 1),
        checkpoint=None,
    )


def _has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def evaluate_point(
    key: str, unit: str, amount: float, criterion: str, granularity: str, seed: int, state, task
) -> dict:
    """Prune ``unit`` alone to ``amount`` and evaluate on the validation subset.

    ``key`` identifies (weights, data, settings) for the cache; ``state`` and
    ``task`` are ignored by the cache because the key stands for them.
    """
    from autoprune.pipeline import prune_and_finetune
    from autoprune.training import evaluate

    model = task.build_model()
    model.load_state_dict(state)
    row = {"layer": unit, "sparsity": amount, "criterion": criterion, "granularity": granularity}
    if amount == 0.0:
        ev = evaluate(model, task.val_data, task)
        return {**row, "metric": ev.metric, "loss": ev.loss, "achieved": 0.0, "error": ""}
    key_name = AMOUNT_FIELD[granularity]
    policy = Policy(
        layers={
            unit: LayerPolicy(granularity=granularity, criterion=criterion, **{key_name: amount})
        },
        finetune=FinetuneRecipe(epochs=0, recalibrate_bn=_has_batchnorm(model)),
        seed=seed,
    )
    try:
        outcome = prune_and_finetune(model, policy, task)
        ev = evaluate(outcome.model, task.val_data, task)
    except Exception as exc:  # a crash is a result: report it, go on with the other points
        return {
            **row,
            "metric": float("nan"),
            "loss": float("nan"),
            "achieved": float("nan"),
            "error": f"{type(exc).__name__}: {exc}".splitlines()[0][:300],
        }
    achieved = next(r for r in outcome.layers if r["layer"] == unit)
    value = achieved[AMOUNT_FIELD[granularity]]
    return {**row, "metric": ev.metric, "loss": ev.loss, "achieved": value, "error": ""}


def cached_point(
    cache: PointCache | None,
    key: str,
    unit: str,
    amount: float,
    criterion: str,
    granularity: str,
    seed: int,
    state,
    task,
) -> dict:
    """:func:`evaluate_point` served from ``cache`` when it holds a valid file (None: no cache)."""
    if cache is None:
        return normalise_row(
            evaluate_point(key, unit, amount, criterion, granularity, seed, state, task)
        )
    fields = point_fields(key, unit, amount, criterion, granularity, seed)
    row = cache.load(fields)
    if row is None:
        row = cache.store(
            fields, evaluate_point(key, unit, amount, criterion, granularity, seed, state, task)
        )
    return row


def _unit_curve(
    cache, key, unit, grid, criterion, granularity, seed, state, task, threads=None
) -> list[dict]:
    """The curve of one unit; ``threads`` pins torch's threads for the call (then restores them)."""
    from autoprune.introspect import torch_threads

    with torch_threads(threads or torch.get_num_threads()):
        return [
            cached_point(cache, key, unit, amount, criterion, granularity, seed, state, task)
            for amount in grid
        ]


def run_key(model: nn.Module, task: Task, light: Task) -> str:
    """What decides every point of a run besides its own settings: model, weights, task, data."""
    return "-".join(
        [
            CACHE_VERSION,
            hashlib.sha256(json.dumps(task.identity()).encode()).hexdigest()[:12],
            f"{type(model).__module__}.{type(model).__qualname__}",
            weights_digest(model),
            dataset_digest(light.val_data),
            dataset_digest(light.train_data),
            str(len(light.val_data)),
        ]
    )


def _point_cache(cache: bool | str | Path) -> PointCache | None:
    if not cache:
        return None
    from autoprune._io import cache_dir

    return PointCache(cache_dir() / "sensitivity" if cache is True else Path(cache))


@validate_params(
    {
        "criterion": Options(CRITERIA + tuple(CRITERION_ALIASES)),
        "granularity": Options(GRANULARITIES),
        "val_items": Interval(int, 1, None),
        "n_jobs": [Options((-1,)), Interval(int, 1, None)],  # -1: every core (or Dask worker)
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
    n_jobs: int = 1,
    backend: str = "loky",
    scheduler: str | None = None,
    cache: bool | str | Path = True,
    seed: int = 0,
    progress: bool = True,
) -> Sensitivity:
    """Measure every unit of ``model`` alone at each amount of ``grid`` (see the module docstring).

    ``cache`` is True (the default cache directory), False (no cache) or a directory.
    ``backend`` is ``"loky"`` (local processes) or ``"dask"`` (the cluster at
    ``scheduler``, or a local one); both give the same table as ``n_jobs=1``.
    """
    import joblib

    from autoprune._progress import progress_bar

    criterion = CRITERION_ALIASES.get(criterion, criterion)
    grid = check_grid(grid)
    start = time.perf_counter()
    light = _light_task(task, val_items=val_items, train_items=2560, seed=seed)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    key = run_key(model, task, light)
    units = sensitivity_units(model, light, granularity)
    store = _point_cache(cache)
    dense_row = cached_point(store, key, "(dense)", 0.0, criterion, granularity, seed, state, light)
    cached_before = (
        store.count(
            [point_fields(key, u, a, criterion, granularity, seed) for u in units for a in grid]
        )
        if store is not None
        else 0
    )
    threads = 1 if (n_jobs != 1 or backend != "loky") else None  # parallel workers: one thread each
    jobs = [
        joblib.delayed(_unit_curve)(
            store, key, u, grid, criterion, granularity, seed, state, light, threads
        )
        for u in units
    ]
    bar = progress_bar(
        total=len(units),
        desc=f"sensitivity ({granularity}, {criterion})",
        unit="layer",
        enabled=progress,
    )
    rows: list[dict] = []
    if n_jobs == 1 and backend == "loky":
        for job in jobs:
            fn, args, kwargs = job
            rows.extend(fn(*args, **kwargs))
            bar.update(1)
    else:
        from autoprune._parallel import joblib_backend

        with joblib_backend(backend, scheduler) as cluster_workers:
            workers = cluster_workers or n_jobs if backend == "dask" else n_jobs
            for curve in joblib.Parallel(n_jobs=workers, return_as="generator")(jobs):
                rows.extend(curve)
                bar.update(1)
    bar.close()
    table = pd.DataFrame(rows)
    table["drop"] = dense_row["metric"] - table["metric"]
    table["loss_increase"] = table["loss"] - dense_row["loss"]
    return Sensitivity(
        table=table,
        dense_metric=dense_row["metric"],
        dense_loss=dense_row["loss"],
        criterion=criterion,
        granularity=granularity,
        grid=grid,
        metric_name=task.metric_name,
        seconds=time.perf_counter() - start,
        cached_points=cached_before,
        total_points=len(units) * len(grid),
    )
