"""The declared fields of a search-space file: each field's reader checks its raw value and parses it.

A reader takes ``(where, value)``, ``where`` naming the field by its path
(``sensitivity.grid[2]``), and returns the parsed value or raises a
:class:`SearchSpaceError` naming it. :data:`SPACE_FIELDS` declares the top
level; the ``sensitivity``, ``fitness``, ``evolution``, ``recovery`` and
``finetune`` sections are sub-specs with their own declared fields.

Example:
    >>> SPACE_FIELDS["nm"]("nm", "2:4"), SPACE_FIELDS["levels"]("levels", [1.0, 0.5])
    (('2:4',), (1.0, 0.5))
    >>> SPACE_FIELDS["sparsity"]("sparsity", {"low": 0.5, "high": 0.2}, )
    Traceback (most recent call last):
    ...
    autoprune.errors.SearchSpaceError: sparsity: must be low <= high. Got {'low': 0.5, 'high': 0.2} instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from autoprune._validation import BOOL, Interval, Options, Rule, fail, shorten, validate
from autoprune.errors import SearchSpaceError
from autoprune.policy import (
    CRITERIA,
    CRITERION_ALIASES,
    GRANULARITIES,
    MAX_EVERY,
    MAX_ROUNDS,
    SCHEDULES,
    SCOPES,
    parse_nm,
    printable,
)

MAX_TIERS = 100  # sensitivity tiers (one search dimension each)
MAX_MOVES = 100  # unit pairs one mutation trades between, parents drawn from
MAX_TOP = 100  # candidates recovered before the pick
MAX_LEVELS = 10  # budget levels a search evolves candidates for
MAX_VAL_ITEMS = 10_000_000  # validation items of the sensitivity analysis
MAX_AMOUNT = 0.999  # the largest per-layer amount a space may allow

# A reader checks one field's raw value (from YAML) and returns it parsed; ``where`` names the field.
Reader = Callable[[str, Any], Any]
NON_EMPTY_LIST = Rule("a non-empty list", lambda v: isinstance(v, list) and bool(v))


def _is_nm(pattern: Any) -> bool:
    try:
        parse_nm(pattern)
    except Exception:  # noqa: BLE001 - whatever the value is, it is no N:M pattern
        return False
    return True


NM_PATTERN = Rule("an 'N:M' pattern with 0 < N < M", _is_nm)


def _check(where: str, value: Any, constraint) -> Any:
    return validate(where, value, constraint, error=SearchSpaceError, kind="field")


def _fail(where: str, expected: str, value: Any) -> None:
    fail(where, expected, value, error=SearchSpaceError, kind="field")


def _number(low: float, high: float, *, closed: str = "both") -> Reader:
    constraint = Interval(float, low, high, closed=closed)
    return lambda where, value: float(_check(where, value, constraint))


def _integer(low: int, high: int) -> Reader:
    constraint = Interval(int, low, high)
    return lambda where, value: _check(where, value, constraint)


def _rule(description: str, test: Callable[[Any], bool]) -> Reader:
    constraint = Rule(description, test)
    return lambda where, value: _check(where, value, constraint)


def _choices(allowed, aliases: dict | None = None) -> Reader:
    """A non-empty list of ``allowed`` names (one name is a list of one); repeats dropped."""
    options = Options(allowed, quoted=False)

    def read(where: str, value: Any) -> tuple[str, ...]:
        items = _check(where, [value] if isinstance(value, str) else value, NON_EMPTY_LIST)
        out: list[str] = []
        for i, item in enumerate(items):
            name = (aliases or {}).get(item, item) if isinstance(item, str) else item
            if _check(f"{where}[{i}]", name, options) not in out:
                out.append(name)
        return tuple(out)

    return read


def _criterion(where: str, value: Any) -> str:
    name = _check(where, value, Rule("one criterion name", lambda v: isinstance(v, str)))
    return _check(where, CRITERION_ALIASES.get(name, name), Options(CRITERIA, quoted=False))


def _nm_patterns(where: str, value: Any) -> tuple[str, ...]:
    patterns = [value] if isinstance(value, str) else value
    if not isinstance(patterns, list) or not patterns:
        _fail(where, "a non-empty list of 'N:M' patterns", patterns)
    for i, pattern in enumerate(patterns):
        _check(f"{where}[{i}]", pattern, NM_PATTERN)
    return tuple(dict.fromkeys(str(p) for p in patterns))


def _grid(where: str, value: Any) -> tuple[float, ...]:
    if not isinstance(value, list) or not value:
        _fail(where, "a non-empty list of amounts in (0, 1)", value)
    amount = _number(0.0, MAX_AMOUNT, closed="right")
    return tuple(sorted({amount(f"{where}[{i}]", v) for i, v in enumerate(value)}))


def _pair(low: float, high: float, *, below: bool = False) -> Reader:
    """A number or a [low, high] pair within [low, high] (``below``: strictly below ``high``)."""
    number = _number(low, high)

    def read(where: str, value: Any) -> tuple[float, float]:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            v = number(where, value)
            if below and v >= high:
                _fail(where, f"below {high:g}", value)
            return (v, v)
        if not isinstance(value, list) or len(value) != 2:
            _fail(where, "a number or a [low, high] pair", value)
        lo, hi = number(f"{where}[0]", value[0]), number(f"{where}[1]", value[1])
        if lo > hi:
            _fail(where, "[low, high] with low <= high", value)
        if below and hi >= high:
            _fail(where, f"[low, high] below {high:g}", value)
        return (lo, hi)

    return read


def _integer_pair(low: int, high: int) -> Reader:
    def read(where: str, value: Any) -> tuple[int, int]:
        pair = value if isinstance(value, list) else [value, value]
        if len(pair) != 2:
            _fail(where, "an integer or a list [low, high]", value)
        first, second = (_integer(low, high)(f"{where}[{i}]", v) for i, v in enumerate(pair))
        if first > second:
            _fail(where, "low <= high", value)
        return first, second

    return read


def _levels(where: str, value: Any) -> tuple[float, ...]:
    """Shares of the budget, the budget itself (1.0) first: [1.0, 0.75, 0.5]."""
    _check(where, value, NON_EMPTY_LIST)
    if len(value) > MAX_LEVELS:
        _fail(where, f"a list of at most {MAX_LEVELS} shares", value)
    levels = tuple(
        _number(0.0, 1.0, closed="right")(f"{where}[{i}]", v) for i, v in enumerate(value)
    )
    if levels[0] != 1.0 or len(set(levels)) != len(levels):
        _fail(where, "distinct shares of the budget starting with 1.0 (the budget itself)", value)
    return levels


def _mapping(where: str, value: Any, known) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        _fail(where, "a mapping", value)
    unknown = sorted(set(value) - set(known), key=str)
    if unknown:
        raise SearchSpaceError(
            f"{where}: unknown field {shorten(unknown[0])}; expected some of {', '.join(sorted(known))}."
        )
    return value


def read_fields(cls, readers: dict[str, Reader], where: str, data: Any, prefix: str = ""):
    """``cls`` built from the mapping ``data``: each given field read, the others left at default."""
    data = _mapping(where, data, readers)
    return cls(**{n: read(prefix + n, data[n]) for n, read in readers.items() if n in data})


@dataclass(frozen=True)
class AmountRange:
    """Bounds of a per-unit amount, with per-layer overrides."""

    low: float = 0.0
    high: float = 0.99
    layers: dict[str, tuple[float, float]] = field(default_factory=dict)

    def bounds(self, unit: str) -> tuple[float, float]:
        return self.layers.get(unit, (self.low, self.high))

    @classmethod
    def parse(cls, where: str, data: Any, default: AmountRange) -> AmountRange:
        data = _mapping(where, data, {"low": 0, "high": 0, "layers": 0})
        low = _number(0.0, MAX_AMOUNT)(f"{where}.low", data.get("low", default.low))
        high = _number(0.0, MAX_AMOUNT)(f"{where}.high", data.get("high", default.high))
        if low > high:
            _fail(where, "low <= high", {"low": low, "high": high})
        layers_raw = data.get("layers", {}) or {}
        if not isinstance(layers_raw, dict):
            _fail(f"{where}.layers", "a mapping of layer name to [low, high]", layers_raw)
        pair = _pair(0.0, MAX_AMOUNT)
        layers = {str(k): pair(f"{where}.layers.{printable(k)}", v) for k, v in layers_raw.items()}
        return cls(low, high, layers)


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

    @property
    def learning_rate(self) -> float:
        low, high = self.lr
        return (low * high) ** 0.5


# The declared fields of a space file, section by section: each field's reader checks and parses it.
SENSITIVITY_FIELDS: dict[str, Reader] = {
    "enabled": lambda where, value: _check(where, value, BOOL),
    "criterion": _criterion,
    "grid": _grid,
    "structured_grid": _grid,
    "tolerance": _number(0.0, 1.0),
    "val_items": _integer(1, MAX_VAL_ITEMS),
}
FITNESS_FIELDS: dict[str, Reader] = {
    "first_look": _integer(1, MAX_VAL_ITEMS),
    "confirm": _integer(1, MAX_VAL_ITEMS),
    "confirm_share": _number(0.0, 1.0),
    "bn_items": _integer(1, MAX_VAL_ITEMS),
    "val_items": _integer(1, MAX_VAL_ITEMS),
}
EVOLUTION_FIELDS: dict[str, Reader] = {
    "moves": _integer_pair(1, MAX_MOVES),
    "step": _pair(0.0, 1.0),
    "criterion_switch": _number(0.0, 1.0),
    "parents": _integer(1, MAX_MOVES),
}
RECOVERY_FIELDS: dict[str, Reader] = {
    "top": _integer(0, MAX_TOP),
    "epochs": _number(0.0, 1000.0),
    "distill_weight": _number(0.0, 1.0),
}
FINETUNE_FIELDS: dict[str, Reader] = {
    "lr": _pair(1e-8, 1.0, below=True),
    "final_epochs": _number(0.0, 1000.0),
    "iterative_rounds": _integer(1, MAX_ROUNDS),
    "gradual_every": _integer(1, MAX_EVERY),
}
SPACE_FIELDS: dict[str, Reader] = {
    "name": _rule("a non-empty string", lambda v: isinstance(v, str) and bool(v)),
    "description": _rule("a string", lambda v: isinstance(v, str)),
    "scopes": _choices(SCOPES),
    "granularities": _choices(GRANULARITIES),
    "criteria": _choices(CRITERIA, CRITERION_ALIASES),
    "schedules": _choices(SCHEDULES),
    "nm": _nm_patterns,
    "sparsity": _amounts(AmountRange(0.0, 0.99)),
    "channel_ratio": _amounts(AmountRange(0.0, 0.9)),
    "tiers": _integer(0, MAX_TIERS),
    "levels": _levels,
    "sensitivity": lambda w, v: read_fields(SensitivitySettings, SENSITIVITY_FIELDS, w, v, w + "."),
    "fitness": lambda w, v: read_fields(FitnessSettings, FITNESS_FIELDS, w, v, w + "."),
    "evolution": lambda w, v: read_fields(EvolutionSettings, EVOLUTION_FIELDS, w, v, w + "."),
    "recovery": lambda w, v: read_fields(RecoverySettingsSpec, RECOVERY_FIELDS, w, v, w + "."),
    "finetune": lambda w, v: read_fields(FinetuneSettings, FINETUNE_FIELDS, w, v, w + "."),
}
