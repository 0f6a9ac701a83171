"""What pruning needs from the data: an example input, and a few batches for data-driven criteria.

The example input traces the model for structured pruning. The data-driven
criteria (taylor, obd, activation) also need training data and the loss: each
pruning step draws ``batches`` seeded batches of ``batch_size`` items from
``data``. Magnitude criteria need nothing but the example input.

Example:
    >>> import torch
    >>> Calibration(torch.zeros(1, 64)).has_data
    False
    >>> from autoprune.tasks import get_task
    >>> calibration = Calibration.from_task(get_task("digits-mlp"), batches=2)
    >>> calibration.has_data, calibration.batches, tuple(calibration.example_input.shape)
    (True, 2, (1, 64))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch.utils.data import Dataset

if TYPE_CHECKING:
    from autoprune.tasks import Task


@dataclass(frozen=True)
class Calibration:
    """An example input; training data and a loss when a criterion needs data."""

    example_input: torch.Tensor
    data: Dataset | None = None
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
    batches: int = 8
    batch_size: int = 64

    @classmethod
    def from_task(cls, task: Task, *, batches: int = 8) -> Calibration:
        """The task's example input, training split and loss."""
        return cls(task.example_input, task.train_data, task.loss, batches=batches)

    @property
    def has_data(self) -> bool:
        """Whether data-driven criteria can be computed."""
        return self.data is not None and self.loss is not None
