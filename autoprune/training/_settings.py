"""What a training run does: its length, its optimizer settings and its seed.

Every field left at None takes the task's value (``Task.epochs``, ``lr``,
``batch_size``, ``weight_decay``); :meth:`TrainingSettings.for_task` fills them in
and checks the result.

Example:
    >>> from autoprune.tasks import get_task
    >>> task = get_task("digits-mlp")
    >>> settings = TrainingSettings(epochs=0.5, seed=3).for_task(task)
    >>> settings.epochs, settings.lr == task.lr, settings.total_steps(steps_per_epoch=17)
    (0.5, True, 9)
    >>> TrainingSettings(batch_size=0).for_task(task)
    Traceback (most recent call last):
    ...
    autoprune.errors.ParameterError: The 'batch_size' parameter must be an integer >= 1. Got 0 instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from autoprune._validation import Interval, check_positive_int, check_seed, validate
from autoprune.tasks import Task


@dataclass(frozen=True)
class TrainingSettings:
    """Adam's settings, the run's length and its seed; None takes the task's value.

    ``epochs`` may be fractional (0.25: a quarter epoch); ``steps`` sets the number
    of optimizer steps exactly (overriding ``epochs``); ``max_steps`` caps it.
    """

    epochs: float | None = None
    lr: float | None = None
    batch_size: int | None = None
    weight_decay: float | None = None
    seed: int = 0
    steps: int | None = None
    max_steps: int | None = None

    def for_task(self, task: Task) -> TrainingSettings:
        """These settings with every None filled from ``task``, checked."""
        settings = replace(
            self,
            epochs=task.epochs if self.epochs is None else self.epochs,
            lr=task.lr if self.lr is None else self.lr,
            batch_size=task.batch_size if self.batch_size is None else self.batch_size,
            weight_decay=task.weight_decay if self.weight_decay is None else self.weight_decay,
        )
        validate("epochs", settings.epochs, Interval(float, 0, None))
        check_positive_int("batch_size", settings.batch_size)
        check_seed("seed", settings.seed, low=-(2**63), high=2**64)  # what torch generators take
        return settings

    def total_steps(self, steps_per_epoch: int) -> int:
        """Optimizer steps of the run: ``steps``, or ``epochs`` of ``steps_per_epoch``, capped."""
        total = math.ceil(self.epochs * steps_per_epoch) if self.steps is None else self.steps
        return total if self.max_steps is None else min(total, self.max_steps)
