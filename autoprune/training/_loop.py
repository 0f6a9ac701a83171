"""The training loop shared by dense training, fine-tuning and search.

Training is seeded and deterministic on the CPU. ``after_step`` callbacks run
after every optimizer step; the pruning engine uses them to keep pruned weights
at exactly zero and to move gradual schedules forward.

Example:
    >>> from autoprune.tasks import get_task
    >>> from autoprune.training import TrainingSettings, evaluate
    >>> task = get_task("digits-mlp")
    >>> model = task.new_model()
    >>> log = train_model(model, task, settings=TrainingSettings(epochs=1), progress=False)
    >>> log.steps, log.epochs
    (17, 1.0)
    >>> 0.0 <= evaluate(model, task.val_data, task).metric <= 1.0
    True
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from autoprune._device import model_device
from autoprune.errors import TrainingDiverged
from autoprune.tasks import Task, iterate_batches
from autoprune.training._settings import TrainingSettings

StepCallback = Callable[[nn.Module, int], None]


@dataclass(frozen=True)
class TrainingLog:
    """What a training run did: steps, epochs, final mean training loss, seconds."""

    steps: int
    epochs: float
    loss: float
    seconds: float


def train_model(
    model: nn.Module,
    task: Task,
    *,
    settings: TrainingSettings | None = None,
    after_step: Sequence[StepCallback] = (),
    data=None,
    progress: bool = True,
    desc: str = "train",
) -> TrainingLog:
    """Train ``model`` in place with Adam on the task's training split (or ``data``).

    ``settings`` (:class:`TrainingSettings`) default to the task's. Raises
    :class:`~autoprune.errors.TrainingDiverged` when the loss becomes NaN or infinite.
    """

    settings = (settings or TrainingSettings()).for_task(task)
    data = task.train_data if data is None else data
    steps_per_epoch = math.ceil(len(data) / settings.batch_size)
    total_steps = settings.total_steps(steps_per_epoch)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay
    )
    batches = _shuffled_batches(data, settings.batch_size, settings.seed)
    start = time.perf_counter()
    with seeded_training(
        model, settings.seed, total=total_steps, desc=desc, progress=progress
    ) as bar:
        steps, loss = _loop(model, task, optimizer, batches, total_steps, after_step, bar)
    return TrainingLog(
        steps=steps,
        epochs=steps / steps_per_epoch,
        loss=loss,
        seconds=time.perf_counter() - start,
    )


@contextlib.contextmanager
def seeded_training(model: nn.Module, seed: int, *, total: int, desc: str, progress: bool):
    """``model`` in train mode under torch's RNG seeded with ``seed`` (dropout and other
    stochastic layers), with a progress bar of ``total`` steps; the caller's RNG state is
    restored on the way out, and the model is left in eval mode when the block succeeds."""
    from autoprune._progress import progress_bar

    caller_rng = torch.get_rng_state()
    torch.manual_seed(seed)
    model.train()
    bar = progress_bar(total=total, desc=desc, unit="step", enabled=progress)
    try:
        yield bar
    finally:
        torch.set_rng_state(caller_rng)
        bar.close()
    model.eval()


def _shuffled_batches(data, batch_size: int, seed: int) -> Iterator[tuple]:
    """Batches of ``data``, reshuffled every epoch by a generator seeded with ``seed``, forever."""
    generator = torch.Generator().manual_seed(seed)
    while True:
        yield from iterate_batches(data, batch_size=batch_size, shuffle=True, generator=generator)


def _loop(model, task, optimizer, batches, total_steps, after_step, bar) -> tuple[int, float]:
    """The optimizer steps of :func:`train_model`: the step count and the running mean loss."""
    device = model_device(model)
    step, running = 0, 0.0
    while step < total_steps:
        inputs, targets = next(batches)
        loss = _step(model, task, optimizer, inputs.to(device), targets.to(device), step)
        step += 1
        for callback in after_step:
            callback(model, step)
        value = float(loss.detach())
        running = 0.98 * running + 0.02 * value if step > 1 else value
        bar.update(1)
        if step % 50 == 0:
            bar.set_postfix(loss=f"{running:.4f}")
    return step, running


def _step(model, task, optimizer, inputs, targets, step: int) -> torch.Tensor:
    """One optimizer step; a loss that is NaN or infinite stops training in one line."""
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
    return loss
