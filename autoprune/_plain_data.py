"""Plain data a user hands autoprune (a policy's provenance, a run's results): small and bounded."""

from __future__ import annotations

from typing import Any

from autoprune._echo import shorten
from autoprune.errors import AutopruneError

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
