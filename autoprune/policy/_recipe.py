"""When masks are applied (the schedule) and how the pruned model is fine-tuned (the recipe).

Example:
    >>> ScheduleSpec("iterative", rounds=5).rounds, FinetuneRecipe().epochs
    (5, 1.0)
"""

from __future__ import annotations

from dataclasses import dataclass

from autoprune._validation import Options, validate, validate_fields
from autoprune.errors import PolicyError
from autoprune.policy._constraints import FINETUNE_FIELDS, SCHEDULE_FIELDS, SCHEDULES


@dataclass(frozen=True)
class ScheduleSpec:
    """One-shot, iterative (``rounds``), gradual (masks updated ``every`` steps until ``end``)
    or regularised (units shrunk with ``strength`` until ``end``, then pruned at once)."""

    name: str = "one-shot"
    rounds: int = 3
    every: int = 20
    end: float = 0.75
    strength: float = 0.2

    def __post_init__(self) -> None:
        validate("schedule", self.name, Options(SCHEDULES), error=PolicyError)
        validate_fields(self, SCHEDULE_FIELDS, error=PolicyError)


@dataclass(frozen=True)
class FinetuneRecipe:
    """Training back after pruning: epochs (fractional allowed), learning rate, BN recalibration.

    ``distill_weight`` > 0 trains a one-shot policy back by distillation from the
    dense model (:func:`~autoprune.training.recover`; 1: distillation only).
    """

    epochs: float = 1.0
    lr: float = 1e-4
    batch_size: int | None = None
    recalibrate_bn: bool = True
    distill_weight: float = 0.0

    def __post_init__(self) -> None:
        validate_fields(self, FINETUNE_FIELDS, error=PolicyError)
