"""The declared fields of a search-space file: each field's reader checks its raw value and parses it.

A reader takes ``(where, value)``, ``where`` naming the field by its path
(``sensitivity.grid[2]``), and returns the parsed value or raises a
:class:`SearchSpaceError` naming it (the readers live in ``_space_readers``).
:data:`SPACE_FIELDS` declares the top level; the ``sensitivity``, ``fitness``,
``evolution``, ``recovery`` and ``finetune`` sections are sub-specs with their
own declared fields.

Example:
    >>> SPACE_FIELDS["nm"]("nm", "2:4"), SPACE_FIELDS["levels"]("levels", [1.0, 0.5])
    (('2:4',), (1.0, 0.5))
    >>> SPACE_FIELDS["sparsity"]("sparsity", {"low": 0.5, "high": 0.2}, )
    Traceback (most recent call last):
    ...
    autoprune.errors.SearchSpaceError: sparsity: must be low <= high. Got {'low': 0.5, 'high': 0.2} instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from autoprune._validation import BOOL
from autoprune.policy import (
    CRITERIA,
    CRITERION_ALIASES,
    GRANULARITIES,
    MAX_EVERY,
    MAX_ROUND_TO,
    MAX_ROUNDS,
    SCHEDULES,
    SCOPES,
    printable,
)
from autoprune.search._space_readers import (
    MAX_AMOUNT,
    MAX_MOVES,
    MAX_TIERS,
    MAX_TOP,
    MAX_VAL_ITEMS,
    Reader,
    check_field,
    choices_reader,
    fail_field,
    integer_pair_reader,
    integer_reader,
    number_reader,
    pair_reader,
    read_criterion,
    read_fields,
    read_grid,
    read_levels,
    read_mapping,
    read_nm_patterns,
    rule_reader,
)


@dataclass(frozen=True)
class AmountRange:
    """Bounds of a per-unit amount, with per-layer overrides."""

    low: float = 0.0
    high: float = MAX_AMOUNT
    layers: dict[str, tuple[float, float]] = field(default_factory=dict)

    def bounds(self, unit: str) -> tuple[float, float]:
        return self.layers.get(unit, (self.low, self.high))

    @classmethod
    def parse(cls, where: str, data: Any, default: AmountRange) -> AmountRange:
        data = read_mapping(where, data, {"low": 0, "high": 0, "layers": 0})
        low = number_reader(0.0, MAX_AMOUNT)(f"{where}.low", data.get("low", default.low))
        high = number_reader(0.0, MAX_AMOUNT)(f"{where}.high", data.get("high", default.high))
        if low > high:
            fail_field(where, "low <= high", {"low": low, "high": high})
        layers_raw = data.get("layers", {}) or {}
        if not isinstance(layers_raw, dict):
            fail_field(f"{where}.layers", "a mapping of layer name to [low, high]", layers_raw)
        pair = pair_reader(0.0, MAX_AMOUNT)
        layers = {str(k): pair(f"{where}.layers.{printable(k)}", v) for k, v in layers_raw.items()}
        return cls(low, high, layers)


# unstructured: up to 99.9% of a layer's weights, so that a budget of 1% of a model's parameters
# leaves room to allocate (a global ranking keeps ~0.3% of the largest layer there)
SPARSITY_RANGE = AmountRange(0.0, MAX_AMOUNT)
CHANNEL_RANGE = AmountRange(0.0, 0.9)  # structured: at least a tenth of a group's channels kept


def _amounts(default: AmountRange) -> Reader:
    return lambda where, value: AmountRange.parse(where, value, default)


@dataclass(frozen=True)
class SensitivitySettings:
    enabled: bool = True
    criterion: str = "l1"
    grid: tuple[float, ...] = (0.3, 0.5, 0.7, 0.9, 0.95, 0.98)
    structured_grid: tuple[float, ...] = (0.25, 0.5, 0.75, 0.9)
    tolerance: float = 0.1
    val_items: int = 2000


@dataclass(frozen=True)
class FitnessSettings:
    """How a candidate is scored without training: calibration items and BatchNorm recalibration."""

    first_look: int = (
        256  # training items every candidate's distance to the dense model is measured on
    )
    confirm: int = 2048  # items of a confirmation (promising candidates and every seed)
    confirm_share: float = 0.3  # confirmed: a first look among this best share of its level so far
    bn_items: int = 1024  # training items BatchNorm statistics are re-estimated on
    val_items: int = (
        2000  # validation items the one-shot metric of a confirmed candidate is measured on
    )


@dataclass(frozen=True)
class EvolutionSettings:
    """How the sampler proposes candidates: mutations of the best confirmed ones, fitted to the budget."""

    moves: tuple[int, int] = (1, 3)  # how many pairs of units trade an amount in one mutation
    step: tuple[float, float] = (0.02, 0.15)  # how much they trade (a fraction of a unit)
    criterion_switch: float = 0.1  # the chance a child ranks by another criterion of the space
    parents: int = 4  # a child's parent is drawn from the best this many confirmed candidates
    depth_flip: float = (
        0.3  # with depth in the space: the chance a child removes or restores a block
    )


@dataclass(frozen=True)
class RecoverySettingsSpec:
    """The recovery of the best candidates before the pick (distillation from the dense model)."""

    top: int = (
        3  # candidates recovered at the budget itself (and the best one at every other level)
    )
    epochs: float = 0.5
    distill_weight: float = 1.0  # 0: the task loss only; 1: distillation from the dense model only


@dataclass(frozen=True)
class FinetuneSettings:
    lr: tuple[float, float] = (5e-4, 5e-4)  # a number, or [low, high]: its geometric mean is used
    final_epochs: float = 3.0
    iterative_rounds: int = 3
    gradual_every: int = 20
    from_scratch: bool = False  # the final step also trains each shortlisted policy from scratch

    @property
    def learning_rate(self) -> float:
        low, high = self.lr
        return (low * high) ** 0.5


# The declared fields of a space file, section by section: each field's reader checks and parses it.
SENSITIVITY_FIELDS: dict[str, Reader] = {
    "enabled": lambda where, value: check_field(where, value, BOOL),
    "criterion": read_criterion,
    "grid": read_grid,
    "structured_grid": read_grid,
    "tolerance": number_reader(0.0, 1.0),
    "val_items": integer_reader(1, MAX_VAL_ITEMS),
}
FITNESS_FIELDS: dict[str, Reader] = {
    "first_look": integer_reader(1, MAX_VAL_ITEMS),
    "confirm": integer_reader(1, MAX_VAL_ITEMS),
    "confirm_share": number_reader(0.0, 1.0),
    "bn_items": integer_reader(1, MAX_VAL_ITEMS),
    "val_items": integer_reader(1, MAX_VAL_ITEMS),
}
EVOLUTION_FIELDS: dict[str, Reader] = {
    "moves": integer_pair_reader(1, MAX_MOVES),
    "step": pair_reader(0.0, 1.0),
    "criterion_switch": number_reader(0.0, 1.0),
    "parents": integer_reader(1, MAX_MOVES),
    "depth_flip": number_reader(0.0, 1.0),
}
RECOVERY_FIELDS: dict[str, Reader] = {
    "top": integer_reader(0, MAX_TOP),
    "epochs": number_reader(0.0, 1000.0),
    "distill_weight": number_reader(0.0, 1.0),
}
FINETUNE_FIELDS: dict[str, Reader] = {
    "lr": pair_reader(1e-8, 1.0, below=True),
    "final_epochs": number_reader(0.0, 1000.0),
    "iterative_rounds": integer_reader(1, MAX_ROUNDS),
    "gradual_every": integer_reader(1, MAX_EVERY),
    "from_scratch": lambda where, value: check_field(where, value, BOOL),
}
SPACE_FIELDS: dict[str, Reader] = {
    "name": rule_reader("a non-empty string", lambda v: isinstance(v, str) and bool(v)),
    "description": rule_reader("a string", lambda v: isinstance(v, str)),
    "scopes": choices_reader(SCOPES),
    "granularities": choices_reader(GRANULARITIES),
    "criteria": choices_reader(CRITERIA, CRITERION_ALIASES),
    "schedules": choices_reader(SCHEDULES),
    "nm": read_nm_patterns,
    "sparsity": _amounts(SPARSITY_RANGE),
    "channel_ratio": _amounts(CHANNEL_RANGE),
    "tiers": integer_reader(0, MAX_TIERS),
    "levels": read_levels,
    "depth": lambda where, value: check_field(where, value, BOOL),
    "inputs": lambda where, value: check_field(where, value, BOOL),
    "round_to": integer_reader(0, MAX_ROUND_TO),
    "sensitivity": lambda w, v: read_fields(SensitivitySettings, SENSITIVITY_FIELDS, w, v, w + "."),
    "fitness": lambda w, v: read_fields(FitnessSettings, FITNESS_FIELDS, w, v, w + "."),
    "evolution": lambda w, v: read_fields(EvolutionSettings, EVOLUTION_FIELDS, w, v, w + "."),
    "recovery": lambda w, v: read_fields(RecoverySettingsSpec, RECOVERY_FIELDS, w, v, w + "."),
    "finetune": lambda w, v: read_fields(FinetuneSettings, FINETUNE_FIELDS, w, v, w + "."),
}
