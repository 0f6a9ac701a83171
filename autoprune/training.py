"""Training and evaluation loops shared by dense training, fine-tuning and search.

Training is seeded and deterministic on the CPU. ``after_step`` callbacks run
after every optimizer step; the pruning engine uses them to keep pruned weights
at exactly zero and to move gradual schedules forward.

Example:
    >>> from autoprune.tasks import get_task
    >>> task = get_task("digits-mlp")
    >>> model = task.new_model()
    >>> _ = train_model(model, task, epochs=1, progress=False)
    >>> 0.0 <= evaluate(model, task.val_data, task).metric <= 1.0
    True
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from autoprune._device import model_device
from autoprune._validation import Interval, check_positive_int, check_seed, validate
from autoprune.errors import TrainingDiverged
from autoprune.tasks import Task, get_metric, iterate_batches
from autoprune.tasks._data import take

StepCallback = Callable[[nn.Module, int], None]


@dataclass(frozen=True)
class Evaluation:
    """Metric (higher is better) and mean loss of a model on one split."""

    metric: float
    loss: float
    n: int


@dataclass(frozen=True)
class TrainingLog:
    """What a training run did: steps, epochs, final mean training loss, seconds."""

    steps: int
    epochs: float
    loss: float
    seconds: float


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


def train_model(
    model: nn.Module,
    task: Task,
    *,
    epochs: float | None = None,
    lr: float | None = None,
    batch_size: int | None = None,
    weight_decay: float | None = None,
    seed: int = 0,
    max_steps: int | None = None,
    steps: int | None = None,
    after_step: Sequence[StepCallback] = (),
    data=None,
    progress: bool = True,
    desc: str = "train",
) -> TrainingLog:
    """Train ``model`` in place with Adam on the task's training split.

    ``epochs`` may be fractional (e.g. 0.25 for a quarter epoch); ``max_steps``
    caps the number of optimizer steps; ``steps`` sets it exactly (overriding
    ``epochs``). Defaults come from the task.
    Raises :class:`TrainingDiverged` when the loss becomes NaN or infinite.
    """
    from autoprune._progress import progress_bar

    epochs = task.epochs if epochs is None else epochs
    lr = task.lr if lr is None else lr
    batch_size = task.batch_size if batch_size is None else batch_size
    validate("epochs", epochs, Interval(float, 0, None))
    check_positive_int("batch_size", batch_size)
    check_seed("seed", seed, low=-(2**63), high=2**64)  # what torch generators take
    weight_decay = task.weight_decay if weight_decay is None else weight_decay
    data = task.train_data if data is None else data
    steps_per_epoch = math.ceil(len(data) / batch_size)
    total_steps = math.ceil(epochs * steps_per_epoch) if steps is None else steps
    if max_steps is not None:
        total_steps = min(total_steps, max_steps)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    generator = torch.Generator().manual_seed(seed)
    caller_rng = (
        torch.get_rng_state()
    )  # seeded here, restored on the way out: the caller's RNG is theirs
    torch.manual_seed(seed)  # dropout and other stochastic layers
    model.train()
    device = model_device(model)
    start, log = time.perf_counter(), {"step": 0, "running": 0.0}
    bar = progress_bar(total=total_steps, desc=desc, unit="step", enabled=progress)
    try:
        _loop(
            model,
            task,
            data,
            optimizer,
            generator,
            batch_size,
            total_steps,
            after_step,
            bar,
            device,
            log,
        )
    finally:
        torch.set_rng_state(caller_rng)
        bar.close()
    model.eval()
    return TrainingLog(
        steps=log["step"],
        epochs=log["step"] / steps_per_epoch,
        loss=log["running"],
        seconds=time.perf_counter() - start,
    )


def _loop(
    model, task, data, optimizer, generator, batch_size, total_steps, after_step, bar, device, log
) -> None:
    """The optimizer steps of :func:`train_model`; ``log`` keeps the step count and running loss."""
    step, running = 0, 0.0
    while step < total_steps:
        for inputs, targets in iterate_batches(
            data, batch_size=batch_size, shuffle=True, generator=generator
        ):
            inputs, targets = inputs.to(device), targets.to(device)
            optimizer.zero_grad(set_to_none=True)
            loss = task.loss(model(inputs), targets)
            if not torch.isfinite(loss.detach()):
                raise TrainingDiverged(
                    f"Training task '{task.name}' diverged: the loss became {float(loss.detach())} "
                    f"at step {step}. Check the data and the loss for NaN or infinite values, or "
                    "lower the learning rate."
                )
            loss.backward()
            optimizer.step()
            step += 1
            for callback in after_step:
                callback(model, step)
            value = float(loss.detach())
            running = 0.98 * running + 0.02 * value if step > 1 else value
            log.update(step=step, running=running)
            bar.update(1)
            if step % 50 == 0:
                bar.set_postfix(loss=f"{running:.4f}")
            if step >= total_steps:
                break
