"""Evaluation on a split, and BatchNorm statistics re-estimated after pruning.

Example:
    >>> from autoprune.tasks import get_task
    >>> task = get_task("digits-mlp")
    >>> ev = evaluate(task.new_model(), task.val_data, task, max_items=100)
    >>> ev.n, 0.0 <= ev.metric <= 1.0
    (100, True)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from autoprune._device import model_device
from autoprune.tasks import Task, get_metric, iterate_batches
from autoprune.tasks._data import take


@dataclass(frozen=True)
class Evaluation:
    """Metric (higher is better) and mean loss of a model on one split."""

    metric: float
    loss: float
    n: int


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data,
    task: Task,
    *,
    batch_size: int = 256,
    max_items: int | None = None,
) -> Evaluation:
    """Evaluate ``model`` on a split (``max_items`` takes a seeded subset)."""
    data = take(data, max_items)
    was_training = model.training
    model.eval()
    metric = get_metric(task.metric)
    device = model_device(model)
    total_loss, total = 0.0, 0
    try:
        for inputs, targets in iterate_batches(data, batch_size=batch_size):
            inputs, targets = inputs.to(device), targets.to(device)
            outputs = model(inputs)
            total_loss += float(task.loss(outputs, targets)) * len(targets)
            total += len(targets)
            metric.update(outputs, targets)
    finally:
        model.train(was_training)
    return Evaluation(metric=metric.compute(), loss=total_loss / max(total, 1), n=total)


@torch.no_grad()
def recalibrate_batchnorm(
    model: nn.Module, data, *, batches: int = 20, batch_size: int = 128, seed: int = 0
) -> bool:
    """Re-estimate BatchNorm running statistics on a few training batches (after pruning).

    Returns False (and does nothing) when the model has no BatchNorm layer.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return False
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the calibration batches
    was_training = model.training
    model.train()
    subset = take(data, batches * batch_size, seed=seed)
    device = model_device(model)
    try:
        for inputs, _ in iterate_batches(subset, batch_size=batch_size):
            model(inputs.to(device))
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        model.train(was_training)
    return True
