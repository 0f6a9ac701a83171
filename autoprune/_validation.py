"""Small checks shared by every edge of the package (CLI, files, Python API).

All of them raise with the same shape of message:
"The 'x' parameter must be <expected>. Got <value> instead."

Example:
    >>> check_fraction("sparsity", 0.5)
    0.5
    >>> check_choice("scope", "local", ("local", "global"))
    'local'
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from autoprune.errors import AutopruneError


def _fail(error: type[AutopruneError], name: str, expected: str, value: Any) -> None:
    raise error(f"The '{name}' parameter must be {expected}. Got {value!r} instead.")


def check_number(name: str, value: Any, *, error: type[AutopruneError] = AutopruneError) -> float:
    """Return ``value`` as a finite float, or raise naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _fail(error, name, "a number", value)
    try:
        number = float(value)  # an integer beyond the float range overflows here
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        _fail(error, name, "a finite number", value)
    return number


def check_fraction(
    name: str,
    value: Any,
    *,
    low: float = 0.0,
    high: float = 1.0,
    include_high: bool = False,
    error: type[AutopruneError] = AutopruneError,
) -> float:
    """Return ``value`` if it lies in ``[low, high)`` (or ``[low, high]``)."""
    number = check_number(name, value, error=error)
    upper_ok = number <= high if include_high else number < high
    if not (low <= number and upper_ok):
        bracket = "]" if include_high else ")"
        _fail(error, name, f"in [{low:g}, {high:g}{bracket}", value)
    return number


def check_positive_int(
    name: str, value: Any, *, minimum: int = 1, error: type[AutopruneError] = AutopruneError
) -> int:
    """Return ``value`` if it is an int of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        _fail(error, name, f"an integer >= {minimum}", value)
    return value


def check_choice(
    name: str,
    value: Any,
    choices: Iterable[str],
    *,
    error: type[AutopruneError] = AutopruneError,
) -> str:
    """Return ``value`` if it is one of ``choices``."""
    options = tuple(choices)
    if value not in options:
        _fail(error, name, "one of " + ", ".join(repr(c) for c in options), value)
    return value
