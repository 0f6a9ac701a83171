"""Bisection on a monotone yes/no question: the boundary where the answer changes.

Example:
    >>> round(first_true(lambda x: x * x >= 0.25), 6)
    0.5
    >>> round(last_true(lambda x: x <= 0.3), 6)
    0.3
"""

from __future__ import annotations

from collections.abc import Callable

STEPS = 30


def first_true(
    holds: Callable[[float], bool], low: float = 0.0, high: float = 1.0, *, steps: int = STEPS
) -> float:
    """The smallest x in [low, high] where ``holds`` (false below, true above); ``holds(high)`` is assumed."""
    for _ in range(steps):
        middle = (low + high) / 2
        if holds(middle):
            high = middle
        else:
            low = middle
    return high


def last_true(
    holds: Callable[[float], bool], low: float = 0.0, high: float = 1.0, *, steps: int = STEPS
) -> float:
    """The largest x in [low, high] where ``holds`` (true below, false above); ``holds(low)`` is assumed."""
    for _ in range(steps):
        middle = (low + high) / 2
        if holds(middle):
            low = middle
        else:
            high = middle
    return low
