"""Small checks shared by every edge of the package (CLI, files, Python API).

All of them raise with the same shape of message:
"The 'x' parameter must be <expected>. Got <value> instead."
A value echoed in a message goes through :func:`shorten`: one line of at most
:data:`ECHO_LIMIT` characters, however large or deeply nested the input.

Example:
    >>> check_fraction("sparsity", 0.5)
    0.5
    >>> check_choice("scope", "local", ("local", "global"))
    'local'
    >>> len(shorten("x" * 10_000))
    200
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from autoprune.errors import AutopruneError

ECHO_LIMIT = 200  # characters of a user's value echoed in a message
_MAX_NESTING = 8  # containers deeper than this are shown as "..."


def _escaped(text: str) -> str:
    """``text`` on one line: control characters (newlines, ...) escaped."""
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 3, 0)] + "..."


def _scalar_repr(value: Any, limit: int) -> str:
    if isinstance(value, str) and len(value) > limit:
        return repr(value[:limit])  # the closing quote is cut off with the rest
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 600:
        return f"<an integer of about {round(value.bit_length() * math.log10(2)):,} digits>"
    try:
        return _escaped(repr(value))
    except Exception:  # noqa: BLE001 - a user object whose __repr__ fails is still named
        return f"<{type(value).__name__}>"


def _bounded_repr(value: Any, out: list[str], room: list[int], depth: int) -> None:
    """Append ``repr(value)`` to ``out`` piece by piece until ``room[0]`` characters are used."""

    def emit(text: str) -> None:
        out.append(text)
        room[0] -= len(text)

    if room[0] <= 0:
        return
    containers = {dict: ("{", "}"), list: ("[", "]"), tuple: ("(", ")"), set: ("{", "}")}
    kind = next((k for k in containers if isinstance(value, k)), None)
    if kind is None or type(value).__repr__ is not kind.__repr__:
        emit(_scalar_repr(value, room[0]))
        return
    if depth >= _MAX_NESTING:
        emit("...")
        return
    opening, closing = containers[kind]
    emit(opening)
    items = value.items() if kind is dict else value
    for index, item in enumerate(items):
        if room[0] <= 0:
            return
        if index:
            emit(", ")
        if kind is dict:
            _bounded_repr(item[0], out, room, depth + 1)
            emit(": ")
            _bounded_repr(item[1], out, room, depth + 1)
        else:
            _bounded_repr(item, out, room, depth + 1)
    if kind is tuple and len(value) == 1:
        emit(",")
    if kind is set and not value:
        out[-1] = "set("
        closing = ")"
    emit(closing)


def shorten(value: Any, limit: int = ECHO_LIMIT, *, text: bool = False) -> str:
    """``repr(value)`` (``str`` when ``text``) on one line and cut to ``limit`` characters.

    The work is bounded too: a huge or deeply nested value is not rendered whole first.

    Example:
        >>> shorten([1, 2.5, "a"]), shorten("a\\nb", text=True)
        ("[1, 2.5, 'a']", 'a\\\\nb')
        >>> shorten(list(range(1000)), 20)
        '[0, 1, 2, 3, 4, 5...'
    """
    if text:
        try:
            raw = value if isinstance(value, str) else str(value)
        except Exception:  # noqa: BLE001 - a user object whose __str__ fails is still named
            raw = f"<{type(value).__name__}>"
        return _cut(_escaped(raw[: limit + 1]), limit)
    out: list[str] = []
    _bounded_repr(value, out, [limit + 1], 0)
    return _cut("".join(out), limit)


def _fail(error: type[AutopruneError], name: str, expected: str, value: Any) -> None:
    raise error(f"The '{name}' parameter must be {expected}. Got {shorten(value)} instead.")


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
    name: str,
    value: Any,
    *,
    minimum: int = 1,
    maximum: int | None = None,
    error: type[AutopruneError] = AutopruneError,
) -> int:
    """Return ``value`` if it is an int of at least ``minimum`` (and at most ``maximum``).

    Example:
        >>> check_positive_int("rounds", 10**6, maximum=100)
        Traceback (most recent call last):
        ...
        autoprune.errors.AutopruneError: The 'rounds' parameter must be an integer in [1, 100]. Got 1000000 instead.
    """
    expected = (
        f"an integer >= {minimum}" if maximum is None else f"an integer in [{minimum}, {maximum}]"
    )
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        _fail(error, name, expected, value)
    if maximum is not None and value > maximum:
        _fail(error, name, expected, value)
    return value


MAX_SEED = 2**63  # torch generators take seeds in [-2**63, 2**64); callers add small offsets


def check_seed(
    name: str,
    value: Any,
    *,
    low: int = 0,
    high: int = MAX_SEED,
    error: type[AutopruneError] = AutopruneError,
) -> int:
    """Return ``value`` if it is an integer seed in ``[low, high)`` (default ``[0, 2**63)``)."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value < high:
        shown = {0: "0", -(2**63): "-2**63"}.get(low, str(low))
        top = {2**63: "2**63", 2**64: "2**64"}.get(high, str(high))
        _fail(error, name, f"an integer in [{shown}, {top})", value)
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


PLAIN_SCALARS = (str, int, float, bool, type(None))


def check_plain_data(
    where: str,
    value: Any,
    *,
    max_items: int = 256,
    max_depth: int = 3,
    max_text: int = 1000,
    error: type[AutopruneError] = AutopruneError,
) -> dict:
    """Return ``value`` if it is a small mapping of text keys to plain scalars, lists and mappings.

    At most ``max_items`` entries in all, ``max_depth`` levels of nesting and
    ``max_text`` characters in a string; anything else is ``error`` naming the spot.

    Example:
        >>> check_plain_data("provenance", {"task": "digits-mlp", "budget": ["params=0.1"]})
        {'task': 'digits-mlp', 'budget': ['params=0.1']}
        >>> check_plain_data("provenance", {"task": {"a": {"b": {"c": 1}}}})
        Traceback (most recent call last):
        ...
        autoprune.errors.AutopruneError: 'provenance.task.a.b' is nested too deeply: at most 3 levels of lists and mappings. Got {'c': 1} instead.
    """
    if not isinstance(value, dict):
        raise error(f"'{where}' must be a mapping. Got {shorten(value)} instead.")
    count = [0, where]  # entries seen, and the name of the whole
    _check_plain(where, value, 0, count, max_items, max_depth, max_text, error)
    return value


def _check_plain(where, value, depth, count, max_items, max_depth, max_text, error) -> None:
    count[0] += 1
    if count[0] > max_items:
        raise error(
            f"'{count[1]}' is too large: at most {max_items} entries in all (at '{where}'). "
            "Shorten it or leave it out."
        )
    if isinstance(value, str) and len(value) > max_text:
        raise error(
            f"'{where}' is a string of {len(value):,} characters; at most {max_text:,} are allowed. "
            f"Got {shorten(value)} instead."
        )
    if isinstance(value, PLAIN_SCALARS):
        return
    if not isinstance(value, (dict, list)):
        raise error(
            f"'{where}' must be plain data (text, a number, true/false, null, a list or a mapping). "
            f"Got {type(value).__name__} {shorten(value)} instead."
        )
    if depth >= max_depth:
        raise error(
            f"'{where}' is nested too deeply: at most {max_depth} levels of lists and mappings. "
            f"Got {shorten(value)} instead."
        )
    if isinstance(value, list):
        for index, item in enumerate(value):
            _check_plain(
                f"{where}[{index}]", item, depth + 1, count, max_items, max_depth, max_text, error
            )
        return
    for key, item in value.items():
        if not isinstance(key, str) or len(key) > 100 or not key.isprintable():
            raise error(
                f"'{where}' has the key {shorten(key)}; keys must be printable text of at most 100 characters."
            )
        _check_plain(
            f"{where}.{key}", item, depth + 1, count, max_items, max_depth, max_text, error
        )
