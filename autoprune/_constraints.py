"""The declared constraints: what a value must be, said once and checked by :mod:`._validation`.

Each constraint's :meth:`~Constraint.problem` is None for a good value, else the
words of what the value must be ("an integer in [1, 100]", "one of 'l1', 'l2'"),
which :func:`autoprune._validation.validate` puts in the one error wording.

Example:
    >>> Interval(int, 1, 100).problem(0), Interval(int, 1, 100).problem(5)
    ('an integer in [1, 100]', None)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_CLOSED = {
    "both": (True, True),
    "left": (True, False),
    "right": (False, True),
    "neither": (False, False),
}


class Constraint:
    """What a value must be: :meth:`problem` names what is expected when ``value`` is not that."""

    def problem(self, value: Any) -> str | None:
        """None when ``value`` satisfies the constraint, else what it must be (for the message)."""
        raise NotImplementedError


def _finite(value: int | float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer beyond the float range
        return False


def _bound(value: float, integer: bool) -> str:
    if not integer:
        return f"{value:g}"
    size = abs(int(value))
    if size >= 2**32 and size & (size - 1) == 0:  # a power of two, as seed ranges are written
        return f"{'-' if value < 0 else ''}2**{size.bit_length() - 1}"
    return f"{int(value):,}"


@dataclass(frozen=True)
class Interval(Constraint):
    """A number between ``left`` and ``right`` (None: unbounded); ``closed`` says which ends belong.

    ``type`` is ``int`` (an integer, never a bool) or ``float`` (any int or float but a
    bool, and finite). ``noun`` is written before the range ("an integer" by default for
    ``int``, nothing for ``float``).

    Example:
        >>> str(Interval(int, 1, None)), str(Interval(float, 0, 1, closed="left"))
        ('an integer >= 1', 'in [0, 1)')
        >>> str(Interval(int, 0, 2**63, closed="left")), Interval(float, 0, 1).problem("x")
        ('an integer in [0, 2**63)', 'a number')
    """

    type: type
    left: float | None = None
    right: float | None = None
    closed: str = "both"
    noun: str | None = None

    def __post_init__(self) -> None:
        if self.type not in (int, float) or self.closed not in _CLOSED:
            raise TypeError(f"Interval needs type int or float and closed in {sorted(_CLOSED)}.")

    def _holds(self, value: float) -> bool:
        left_in, right_in = _CLOSED[self.closed]
        above = self.left is None or (self.left <= value if left_in else self.left < value)
        below = self.right is None or (value <= self.right if right_in else value < self.right)
        return above and below

    def problem(self, value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return str(self) if self.type is int else "a number"
        if self.type is int and not isinstance(value, int):
            return str(self)
        if self.type is float and not _finite(value):
            return "a finite number"
        return None if self._holds(value) else str(self)

    def __str__(self) -> str:
        integer = self.type is int
        noun = self.noun if self.noun is not None else ("an integer" if integer else "")
        left_in, right_in = _CLOSED[self.closed]
        low = None if self.left is None else _bound(self.left, integer)
        high = None if self.right is None else _bound(self.right, integer)
        if low is not None and high is not None:
            span = f"in {'[' if left_in else '('}{low}, {high}{']' if right_in else ')'}"
        elif low is not None:
            span = f"{'>=' if left_in else '>'} {low}"
        elif high is not None:
            span = f"{'<=' if right_in else '<'} {high}"
        else:
            span = ""
        return " ".join(part for part in (noun, span) if part) or "a number"


@dataclass(frozen=True)
class Options(Constraint):
    """One of ``choices``, shown quoted (``'local'``) or, for file fields, as written (``local``).

    Example:
        >>> Options(("local", "global")).problem("diagonal")
        "one of 'local', 'global'"
    """

    choices: tuple
    quoted: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "choices", tuple(self.choices))

    def problem(self, value: Any) -> str | None:
        try:
            return None if value in self.choices else str(self)
        except Exception:  # noqa: BLE001 - a value whose == fails (an array) is no choice
            return str(self)

    def __str__(self) -> str:
        return "one of " + ", ".join(repr(c) if self.quoted else str(c) for c in self.choices)


@dataclass(frozen=True)
class Rule(Constraint):
    """Any other constraint: ``test(value)`` says whether it holds, ``description`` what it asks.

    Example:
        >>> Rule("a non-empty string", lambda v: isinstance(v, str) and bool(v)).problem("")
        'a non-empty string'
    """

    description: str
    test: Callable[[Any], bool]

    def problem(self, value: Any) -> str | None:
        return None if self.test(value) else self.description

    def __str__(self) -> str:
        return self.description


BOOL = Rule("true or false", lambda value: isinstance(value, bool))
