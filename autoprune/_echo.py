"""How a user's value is echoed in a message: one line, at most :data:`ECHO_LIMIT` characters.

The work is bounded too: a huge or deeply nested value is never rendered whole first.

Example:
    >>> len(shorten("x" * 10_000))
    200
"""

from __future__ import annotations

import math
from typing import Any

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
