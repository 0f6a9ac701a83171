"""Budgets: parse ``KIND=VALUE`` and turn it into an absolute limit.

Kinds and values (a fraction is of the dense model):

============  =============================================  ===========================
kind          fraction of dense                              absolute
============  =============================================  ===========================
``params``    ``0.1``, ``10%``, ``0.1x``                     ``42000`` (non-zero params)
``macs``      ``0.5``, ``50%``                               ``2e6``, ``2M``, ``1.5G``
``size``      ``0.25``, ``25%``                              ``0.4MB``, ``400KB``, ``1MiB``
``latency``   ``0.5``, ``50%``, ``0.5x``                     ``5ms``, ``5.5 ms``
============  =============================================  ===========================

A bare number up to 1 is a fraction; params and MACs above 1 are counts;
size and latency need a unit to be absolute. ``macs`` are the MACs dense kernels
execute, so only structured pruning (removing channels, heads or neurons) lowers
them, as it does latency: :attr:`Budget.needs_structure` says so.

Example:
    >>> b = parse_budget("params=10%")
    >>> b.kind, b.value, b.relative
    ('params', 0.1, True)
    >>> parse_budget("size=1.5MB").value
    1500000.0
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from autoprune._validation import BOOL, Interval, Options, shorten, validate, validate_fields
from autoprune.errors import BudgetError

# A model timed again moves by a few percent (1-2% seen between a search's final step and a
# benchmark): a search fits its candidates this far under a latency limit.
LATENCY_MARGIN = 0.03

KINDS = ("params", "macs", "size", "latency")
STRUCTURAL_KINDS = ("macs", "latency")  # zeroed weights do not lower these: dense kernels run them
UNITS = {
    "params": {"": 1.0, "k": 1e3, "m": 1e6},
    "macs": {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9},
    "size": {"b": 1.0, "kb": 1e3, "mb": 1e6, "gb": 1e9, "kib": 2**10, "mib": 2**20, "gib": 2**30},
    "latency": {"ms": 1.0, "s": 1000.0, "us": 1e-3},
}
UNIT_NAMES = {"params": "parameters", "macs": "MACs", "size": "bytes", "latency": "ms"}
POSITIVE = Interval(float, 0, None, closed="neither")
FRACTION_OF_DENSE = Interval(float, 0, 1, closed="neither")
BUDGET_FIELDS = {"kind": Options(KINDS), "value": POSITIVE, "relative": BOOL}
_VALUE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([a-z%]*)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Budget:
    """One limit: ``kind`` <= ``value`` (a fraction of the dense model when ``relative``)."""

    kind: str
    value: float
    relative: bool

    def __post_init__(self) -> None:
        validate_fields(self, BUDGET_FIELDS, error=BudgetError)
        if self.relative:
            validate("value", self.value, FRACTION_OF_DENSE, error=BudgetError)

    @property
    def needs_structure(self) -> bool:
        """Whether only structured pruning can lower this cost (dense kernels ignore zeroed weights).

        Example:
            >>> parse_budget("macs=0.5").needs_structure, parse_budget("params=0.5").needs_structure
            (True, False)
        """
        return self.kind in STRUCTURAL_KINDS

    def limit(self, dense_value: float) -> float:
        """The absolute limit, given the dense model's value of this kind."""
        return self.value * dense_value if self.relative else self.value

    def aim(self, dense_value: float) -> float:
        """What a search aims at: the limit, less :data:`LATENCY_MARGIN` for a measured latency.

        Example:
            >>> parse_budget("latency=0.5").aim(10.0), parse_budget("params=0.5").aim(10.0)
            (4.85, 5.0)
        """
        margin = LATENCY_MARGIN if self.kind == "latency" else 0.0
        return self.limit(dense_value) * (1.0 - margin)

    def __str__(self) -> str:
        if self.relative:
            return f"{self.kind} <= {self.value:g} x dense"
        unit = UNIT_NAMES[self.kind]
        return f"{self.kind} <= {self.value:,.6g} {unit}"

    @property
    def slug(self) -> str:
        """A short name for file and study names, e.g. ``params0.1``."""
        return f"{self.kind}{self.value:g}" + ("" if self.relative else UNIT_NAMES[self.kind][:2])


def parse_budget(text: str) -> Budget:
    """Parse one ``KIND=VALUE`` budget (see the module docstring)."""
    if not isinstance(text, str) or "=" not in text:
        raise BudgetError(
            f"A budget looks like KIND=VALUE with KIND one of {', '.join(KINDS)} (e.g. params=0.1). Got {shorten(text)} instead."
        )
    kind, _, raw = text.partition("=")
    kind = kind.strip().lower()
    if kind not in KINDS:
        raise BudgetError(
            f"Unknown budget kind {shorten(kind)}; expected one of {', '.join(KINDS)}."
        )
    match = _VALUE.match(raw)
    if not match:
        raise BudgetError(
            f"Budget {shorten(text)}: cannot read the value {shorten(raw)}; e.g. {kind}=0.5 or {kind}=50%."
        )
    number, unit = float(match.group(1)), match.group(2).lower()
    if not math.isfinite(number) or number <= 0:
        raise BudgetError(f"Budget {shorten(text)}: the value must be a positive number.")
    if unit in ("%", "x"):
        number = number / 100 if unit == "%" else number
        return _relative(kind, number, text)
    if unit == "" and number <= 1:
        return _relative(kind, number, text)
    if unit not in UNITS[kind] or (unit == "" and kind in ("size", "latency")):
        units = ", ".join(u for u in UNITS[kind] if u) or "none"
        raise BudgetError(
            f"Budget {shorten(text)}: an absolute {kind} needs a unit ({units}); "
            f"or give a fraction of the dense model, e.g. {kind}=0.5."
        )
    value = number * UNITS[kind][unit]
    if not 0 < value < math.inf:
        raise BudgetError(
            f"Budget {shorten(text)}: the value must be a positive number a float can hold. Got {value:g} {UNIT_NAMES[kind]}."
        )
    return Budget(kind, value, relative=False)


def _relative(kind: str, fraction: float, text: str) -> Budget:
    if not 0 < fraction < 1:
        raise BudgetError(
            f"Budget {shorten(text)}: a fraction of the dense model must be in (0, 1). Got {fraction:g}."
        )
    return Budget(kind, fraction, relative=True)


def parse_budgets(texts) -> list[Budget]:
    """Parse one or several budgets: a list, or one string with commas (``params=0.1,latency=0.5``)."""
    if isinstance(texts, Budget):
        return [texts]
    if isinstance(texts, str):
        texts = [texts]
    try:
        texts = list(texts)
    except TypeError:
        raise BudgetError(
            f"Budgets are a string like 'params=0.1,latency=5ms' or a list of them. Got {shorten(texts)} instead."
        ) from None
    items = [
        part for text in texts for part in (text.split(",") if isinstance(text, str) else [text])
    ]
    budgets = [
        b if isinstance(b, Budget) else parse_budget(b)
        for b in items
        if not (isinstance(b, str) and not b.strip())
    ]
    if not budgets:
        raise BudgetError("At least one budget is needed, e.g. --budget params=0.1.")
    kinds = [b.kind for b in budgets]
    duplicated = sorted({k for k in kinds if kinds.count(k) > 1})
    if duplicated:
        raise BudgetError(
            f"Budget kind {shorten(duplicated[0])} is given more than once; give each kind once."
        )
    return budgets
