"""The dense baseline: train a task's model once, cache it, reuse it everywhere.

The cache key covers the task (name, loss, metric, validation split), the seed,
the model class and architecture (layer names and shapes), the training settings
and a digest of the data, so a changed model, loss or data set is never served a
stale checkpoint. A task with a ``checkpoint`` file
is loaded from it instead of being trained.

Example (two epochs instead of the task's 30, to be quick):
    >>> import tempfile
    >>> from autoprune.tasks import get_task
    >>> task, cache = get_task("digits-mlp"), tempfile.mkdtemp()
    >>> task.epochs = 2
    >>> first = dense_model(task, cache=cache, progress=False)
    >>> again = dense_model(task, cache=cache, progress=False)
    >>> first.info["cached"], again.info["cached"], again.info["test_metric"] > 0.5
    (False, True, True)
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass

import torch
from torch import nn

from autoprune._io import cache_dir, read_json, write_json
from autoprune._validation import check_seed
from autoprune._weights import load_into, load_weights, save_weights
from autoprune.apply import load_error_reason
from autoprune.errors import TaskError
from autoprune.tasks import Task
from autoprune.tasks._data import dataset_digest
from autoprune.training._evaluate import evaluate
from autoprune.training._loop import train_model
from autoprune.training._settings import TrainingSettings


def architecture_fingerprint(model: nn.Module) -> list[tuple[str, list[int]]]:
    """Names and shapes of every entry of the state_dict, in order."""
    return [(name, list(t.shape)) for name, t in model.state_dict().items()]


def _cache_key(task: Task, model: nn.Module, seed: int) -> str:
    payload = {
        "task": task.identity(),
        "model": f"{type(model).__module__}.{type(model).__qualname__}",
        "architecture": architecture_fingerprint(model),
        "train": [task.epochs, task.lr, task.batch_size, task.weight_decay, seed],
        "data": [dataset_digest(task.train_data), dataset_digest(task.val_data)],
    }
    return hashlib.sha256(json.dumps(payload).encode()).hexdigest()[:12]


@dataclass
class DenseModel:
    """A trained dense model and what is known about it (metrics, time, file)."""

    model: nn.Module
    info: dict


def dense_model(
    task: Task,
    *,
    seed: int = 0,
    cache: str | os.PathLike | None = None,
    retrain: bool = False,
    progress: bool = True,
) -> DenseModel:
    """The trained dense model of ``task``: from its checkpoint, the cache, or trained now.

    The task's data are checked against the model first (``Task.check_data``): data
    the model cannot read, NaN values or labels out of range stop here, in one line.
    """
    check_seed("seed", seed, low=-(2**63), high=2**64, error=TaskError)  # what torch takes
    caller_rng = torch.get_rng_state()
    torch.manual_seed(seed)  # the model's initial weights
    try:
        model = task.new_model()
    finally:
        torch.set_rng_state(caller_rng)
    task.check_data(model)
    if task.checkpoint is not None:
        return _from_checkpoint(task, model)
    key = _cache_key(task, model, seed)
    stem = cache_dir(cache) / "dense" / f"{task.name}-seed{seed}-{key}"
    weights, meta = stem.with_suffix(".safetensors"), stem.with_suffix(".json")
    if not retrain and weights.is_file() and meta.is_file():
        load_into(model, load_weights(weights))
        model.eval()
        return DenseModel(model, {**read_json(meta), "cached": True, "path": str(weights)})
    log = train_model(
        model,
        task,
        settings=TrainingSettings(seed=seed),
        progress=progress,
        desc=f"train {task.name}",
    )
    info = {
        "task": task.name,
        "seed": seed,
        "epochs": task.epochs,
        "train_seconds": round(log.seconds, 2),
        "val_metric": evaluate(model, task.val_data, task).metric,
        "test_metric": evaluate(model, task.test_data, task).metric,
        "metric": task.metric_name,
        "key": key,
    }
    save_weights(weights, model.state_dict())
    write_json(meta, info)
    return DenseModel(model, {**info, "cached": False, "path": str(weights)})


def _from_checkpoint(task: Task, model: nn.Module) -> DenseModel:
    state = load_weights(task.checkpoint)
    try:
        load_into(model, state)
    except RuntimeError as exc:
        raise TaskError(
            f"Checkpoint {task.checkpoint} does not fit the model of task '{task.name}': "
            f"{load_error_reason(exc)}"
        ) from exc
    model.eval()
    info = {
        "task": task.name,
        "checkpoint": str(task.checkpoint),
        "val_metric": evaluate(model, task.val_data, task).metric,
        "test_metric": evaluate(model, task.test_data, task).metric,
        "metric": task.metric_name,
        "cached": True,
        "path": str(task.checkpoint),
    }
    return DenseModel(model, info)
