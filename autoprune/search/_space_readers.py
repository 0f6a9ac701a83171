"""Readers of search-space fields: each checks one raw value (from YAML) and returns it parsed.

A reader takes ``(where, value)``, ``where`` naming the field by its path
(``sensitivity.grid[2]``), and returns the parsed value or raises a
:class:`SearchSpaceError` naming it. The ``*_reader`` functions make readers
from bounds or choices; the ``read_*`` functions are readers.

Example:
    >>> number_reader(0.0, 1.0)("tolerance", 0.25), read_grid("grid", [0.5, 0.3, 0.5])
    (0.25, (0.3, 0.5))
    >>> pair_reader(0.0, 1.0)("step", [0.2, 0.1])
    Traceback (most recent call last):
    ...
    autoprune.errors.SearchSpaceError: step: must be [low, high] with low <= high. Got [0.2, 0.1] instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from autoprune._validation import Interval, Options, Rule, fail, shorten, validate
from autoprune.errors import SearchSpaceError
from autoprune.policy import CRITERIA, CRITERION_ALIASES, parse_nm

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


def check_field(where: str, value: Any, constraint) -> Any:
    """``value`` if it meets ``constraint``, else a SearchSpaceError naming field ``where``."""
    return validate(where, value, constraint, error=SearchSpaceError, kind="field")


def fail_field(where: str, expected: str, value: Any) -> None:
    """Raise a SearchSpaceError: field ``where`` must be ``expected``, got ``value``."""
    fail(where, expected, value, error=SearchSpaceError, kind="field")


def number_reader(low: float, high: float, *, closed: str = "both") -> Reader:
    """A reader of a number in [``low``, ``high``] (``closed``: which ends are included)."""
    constraint = Interval(float, low, high, closed=closed)
    return lambda where, value: float(check_field(where, value, constraint))


def integer_reader(low: int, high: int) -> Reader:
    """A reader of an integer in [``low``, ``high``]."""
    constraint = Interval(int, low, high)
    return lambda where, value: check_field(where, value, constraint)


def rule_reader(description: str, test: Callable[[Any], bool]) -> Reader:
    """A reader of a value that passes ``test`` (``description`` says what it must be)."""
    constraint = Rule(description, test)
    return lambda where, value: check_field(where, value, constraint)


def choices_reader(allowed, aliases: dict | None = None) -> Reader:
    """A non-empty list of ``allowed`` names (one name is a list of one); repeats dropped."""
    options = Options(allowed, quoted=False)

    def read(where: str, value: Any) -> tuple[str, ...]:
        items = check_field(where, [value] if isinstance(value, str) else value, NON_EMPTY_LIST)
        out: list[str] = []
        for i, item in enumerate(items):
            name = (aliases or {}).get(item, item) if isinstance(item, str) else item
            if check_field(f"{where}[{i}]", name, options) not in out:
                out.append(name)
        return tuple(out)

    return read


def read_criterion(where: str, value: Any) -> str:
    """One criterion name (an alias is read as its criterion)."""
    name = check_field(where, value, Rule("one criterion name", lambda v: isinstance(v, str)))
    return check_field(where, CRITERION_ALIASES.get(name, name), Options(CRITERIA, quoted=False))


def read_nm_patterns(where: str, value: Any) -> tuple[str, ...]:
    """One 'N:M' pattern or a non-empty list of them; repeats dropped."""
    patterns = [value] if isinstance(value, str) else value
    if not isinstance(patterns, list) or not patterns:
        fail_field(where, "a non-empty list of 'N:M' patterns", patterns)
    for i, pattern in enumerate(patterns):
        check_field(f"{where}[{i}]", pattern, NM_PATTERN)
    return tuple(dict.fromkeys(str(p) for p in patterns))


def read_grid(where: str, value: Any) -> tuple[float, ...]:
    """A non-empty list of amounts in (0, 1), sorted, repeats dropped."""
    if not isinstance(value, list) or not value:
        fail_field(where, "a non-empty list of amounts in (0, 1)", value)
    amount = number_reader(0.0, MAX_AMOUNT, closed="right")
    return tuple(sorted({amount(f"{where}[{i}]", v) for i, v in enumerate(value)}))


def pair_reader(low: float, high: float, *, below: bool = False) -> Reader:
    """A number or a [low, high] pair within [low, high] (``below``: strictly below ``high``)."""
    number = number_reader(low, high)

    def read(where: str, value: Any) -> tuple[float, float]:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            v = number(where, value)
            if below and v >= high:
                fail_field(where, f"below {high:g}", value)
            return (v, v)
        if not isinstance(value, list) or len(value) != 2:
            fail_field(where, "a number or a [low, high] pair", value)
        lo, hi = number(f"{where}[0]", value[0]), number(f"{where}[1]", value[1])
        if lo > hi:
            fail_field(where, "[low, high] with low <= high", value)
        if below and hi >= high:
            fail_field(where, f"[low, high] below {high:g}", value)
        return (lo, hi)

    return read


def integer_pair_reader(low: int, high: int) -> Reader:
    """A reader of an integer or a [low, high] pair of integers within [``low``, ``high``]."""

    def read(where: str, value: Any) -> tuple[int, int]:
        pair = value if isinstance(value, list) else [value, value]
        if len(pair) != 2:
            fail_field(where, "an integer or a list [low, high]", value)
        first, second = (integer_reader(low, high)(f"{where}[{i}]", v) for i, v in enumerate(pair))
        if first > second:
            fail_field(where, "low <= high", value)
        return first, second

    return read


def read_levels(where: str, value: Any) -> tuple[float, ...]:
    """Shares of the budget, the budget itself (1.0) first: [1.0, 0.75, 0.5]."""
    check_field(where, value, NON_EMPTY_LIST)
    if len(value) > MAX_LEVELS:
        fail_field(where, f"a list of at most {MAX_LEVELS} shares", value)
    levels = tuple(
        number_reader(0.0, 1.0, closed="right")(f"{where}[{i}]", v) for i, v in enumerate(value)
    )
    if levels[0] != 1.0 or len(set(levels)) != len(levels):
        fail_field(
            where, "distinct shares of the budget starting with 1.0 (the budget itself)", value
        )
    return levels


def read_mapping(where: str, value: Any, known) -> dict:
    """``value`` if it is a mapping of ``known`` fields only (None reads as empty)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        fail_field(where, "a mapping", value)
    unknown = sorted(set(value) - set(known), key=str)
    if unknown:
        raise SearchSpaceError(
            f"{where}: unknown field {shorten(unknown[0])}; expected some of {', '.join(sorted(known))}."
        )
    return value


def read_fields(cls, readers: dict[str, Reader], where: str, data: Any, prefix: str = ""):
    """``cls`` built from the mapping ``data``: each given field read, the others left at default."""
    data = read_mapping(where, data, readers)
    return cls(**{n: read(prefix + n, data[n]) for n, read in readers.items() if n in data})
