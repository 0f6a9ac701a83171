"""What one analysis measures and on which data: grid, units, the light task, the run key.

A unit is a prunable layer (unstructured) or a dependency group (structured:
layers coupled by a residual addition or a shared BatchNorm lose channels
together, so they are measured together). The run key is a hash of everything
that decides every point besides its own settings (model class and weights,
task, data), so a changed model, loss or data set is never served stale points.

Example:
    >>> from autoprune.tasks import get_task
    >>> task = get_task("digits-mlp")
    >>> check_grid([0.9, 0.5, 0.5])
    (0.5, 0.9)
    >>> sensitivity_units(task.new_model(), task, "unstructured")
    ['fc1', 'fc2', 'fc3']
    >>> m = Measurement.of(task.new_model(), task, criterion="l1", granularity="unstructured",
    ...                    val_items=100, seed=0)
    >>> len(m.task.val_data), m.fields("fc1", 0.5)["unit"]
    (100, 'fc1')
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from dataclasses import dataclass

from torch import nn

from autoprune.errors import AutopruneError
from autoprune.introspect import prunable_layers
from autoprune.sensitivity._cache import point_fields
from autoprune.tasks import Task
from autoprune.tasks._data import dataset_digest, take

DEFAULT_GRID = (0.1, 0.3, 0.5, 0.7, 0.9)
GRANULARITIES = ("unstructured", "structured")
CACHE_VERSION = "3"  # bump when evaluate_point changes what it computes: old points then miss
TRAIN_ITEMS = 2560  # training items kept for BatchNorm recalibration


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


def light_task(task: Task, *, val_items: int, train_items: int, seed: int) -> Task:
    """The task with only the data the analysis touches (cheap to send to workers)."""
    val = take(task.val_data, val_items, seed=seed)
    return dataclasses.replace(
        task,
        train_data=take(task.train_data, train_items, seed=seed),
        val_data=val,
        test_data=take(val, 1),
        checkpoint=None,
    )


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


@dataclass(frozen=True, eq=False)
class Measurement:
    """What every point of one analysis shares (sent whole to the workers)."""

    key: str  # the run key: model, weights, task and data
    criterion: str
    granularity: str
    seed: int
    state: dict  # the dense weights every point starts from
    task: Task  # the light task: only the data the analysis touches

    @classmethod
    def of(
        cls,
        model: nn.Module,
        task: Task,
        *,
        criterion: str,
        granularity: str,
        val_items: int,
        seed: int,
    ) -> Measurement:
        """The measurement of ``model`` on ``task`` (its validation split cut to ``val_items``)."""
        light = light_task(task, val_items=val_items, train_items=TRAIN_ITEMS, seed=seed)
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return cls(run_key(model, task, light), criterion, granularity, seed, state, light)

    def fields(self, unit: str, amount: float) -> dict:
        """What identifies the point (``unit``, ``amount``) in the cache."""
        return point_fields(self.key, unit, amount, self.criterion, self.granularity, self.seed)
