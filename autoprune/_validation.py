"""Declared constraints: the one way every edge (Python API, files, CLI) checks a value.

A constraint says what a value must be (:class:`Interval`, :class:`Options`,
:class:`Rule`, in :mod:`autoprune._constraints`); :func:`validate` checks one value against it, :func:`validate_fields`
the fields of a dataclass, and :func:`validate_params` declares the constraints of
a function's arguments once, next to its signature. A list of constraints means
"any of them" (``None`` in it: the value may be None). Every failure reads the same:

    <subject> must be <expected>. Got <value> instead.

where the subject is ``The 'x' parameter`` (a Python argument or a policy field,
the default), ``x.y:`` (a field of a file, by its path: ``kind="field"``) or
``--x`` (a command-line flag: ``kind="flag"``). The value echoed goes through
:func:`shorten`: one line of at most :data:`ECHO_LIMIT` characters.

Example:
    >>> validate("sparsity", 0.5, Interval(float, 0, 1, closed="left"))
    0.5
    >>> validate("rounds", 10**6, Interval(int, 1, 100))
    Traceback (most recent call last):
    ...
    autoprune.errors.ParameterError: The 'rounds' parameter must be an integer in [1, 100]. Got 1000000 instead.
    >>> validate("scopes[1]", "diagonal", Options(["local", "global"], quoted=False), kind="field")
    Traceback (most recent call last):
    ...
    autoprune.errors.ParameterError: scopes[1]: must be one of local, global. Got 'diagonal' instead.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from typing import Any, NoReturn

from autoprune._constraints import BOOL, Constraint, Interval, Options, Rule
from autoprune._echo import ECHO_LIMIT, shorten
from autoprune._plain_data import PLAIN_SCALARS, check_plain_data
from autoprune.errors import AutopruneError, ParameterError

__all__ = [
    "BOOL",
    "Constraint",
    "ECHO_LIMIT",
    "Interval",
    "MAX_SEED",
    "Options",
    "PLAIN_SCALARS",
    "Rule",
    "check_choice",
    "check_fraction",
    "check_number",
    "check_plain_data",
    "check_positive_int",
    "check_seed",
    "fail",
    "shorten",
    "validate",
    "validate_fields",
    "validate_params",
]

MAX_SEED = 2**63  # torch generators take seeds in [-2**63, 2**64); callers add small offsets


def _problem(constraint: Constraint | list | tuple, value: Any) -> str | None:
    if not isinstance(constraint, (list, tuple)):
        return constraint.problem(value)
    if value is None and any(c is None for c in constraint):
        return None
    options = [c for c in constraint if c is not None]
    problems = [c.problem(value) for c in options]
    if any(p is None for p in problems):
        return None
    return problems[0] if len(options) == 1 else " or ".join(str(c) for c in options)


def _subject(name: str, kind: str) -> str:
    if kind == "field":
        return f"{name}:"
    if kind == "flag":
        return "--" + name.replace("_", "-")
    return f"The '{name}' parameter"


def fail(
    name: str,
    expected: str,
    value: Any,
    *,
    error: type[AutopruneError] = ParameterError,
    kind: str = "parameter",
) -> NoReturn:
    """Raise ``error`` in the one wording, for a condition that no declared constraint states."""
    raise error(f"{_subject(name, kind)} must be {expected}. Got {shorten(value)} instead.")


def validate(
    name: str,
    value: Any,
    constraint: Constraint | list | tuple,
    *,
    error: type[AutopruneError] = ParameterError,
    kind: str = "parameter",
) -> Any:
    """Return ``value`` if it satisfies ``constraint``, else raise ``error`` in the one wording."""
    expected = _problem(constraint, value)
    if expected is not None:
        fail(name, expected, value, error=error, kind=kind)
    return value


def validate_fields(
    instance: Any, constraints: dict, *, error: type[AutopruneError] = ParameterError
) -> None:
    """Check each field of ``instance`` named in ``constraints`` (in their order).

    Example:
        >>> from types import SimpleNamespace
        >>> validate_fields(SimpleNamespace(epochs=2), {"epochs": Interval(int, 0, 10)})
    """
    for name, constraint in constraints.items():
        validate(name, getattr(instance, name), constraint, error=error)


def validate_params(
    constraints: dict, *, error: type[AutopruneError] = ParameterError
) -> Callable[[Callable], Callable]:
    """Decorator: check the arguments named in ``constraints`` before the function runs.

    The function keeps its signature for ``help()`` and ``inspect.signature``; a call
    that does not bind (a missing or unknown argument) fails as Python says.

    Example:
        >>> @validate_params({"n": Interval(int, 1, None)})
        ... def repeat(text, *, n=2):
        ...     return text * n
        >>> repeat("ab", n=3), str(inspect.signature(repeat))
        ('ababab', '(text, *, n=2)')
        >>> repeat("ab", n=0)
        Traceback (most recent call last):
        ...
        autoprune.errors.ParameterError: The 'n' parameter must be an integer >= 1. Got 0 instead.
    """

    def decorate(function: Callable) -> Callable:
        signature = inspect.signature(function)
        unknown = sorted(set(constraints) - set(signature.parameters))
        if unknown:
            raise TypeError(f"{function.__qualname__} has no parameter(s) {unknown}.")

        @functools.wraps(function)
        def checked(*args, **kwargs):
            try:
                arguments = signature.bind(*args, **kwargs).arguments
            except TypeError:
                return function(*args, **kwargs)  # Python names the missing or unknown argument
            for name, constraint in constraints.items():
                if name in arguments:
                    validate(name, arguments[name], constraint, error=error)
            return function(*args, **kwargs)

        checked.parameter_constraints = dict(constraints)
        return checked

    return decorate


# ---------------------------------------------------------------------- the common checks, named


def check_number(name: str, value: Any, *, error: type[AutopruneError] = ParameterError) -> float:
    """Return ``value`` as a finite float, or raise naming ``name``."""
    validate(name, value, Interval(float), error=error)
    return float(value)


def check_fraction(
    name: str,
    value: Any,
    *,
    low: float = 0.0,
    high: float = 1.0,
    include_high: bool = False,
    error: type[AutopruneError] = ParameterError,
) -> float:
    """Return ``value`` if it lies in ``[low, high)`` (or ``[low, high]``).

    Example:
        >>> check_fraction("sparsity", 0.5)
        0.5
    """
    constraint = Interval(float, low, high, closed="both" if include_high else "left")
    validate(name, value, constraint, error=error)
    return float(value)


def check_positive_int(
    name: str,
    value: Any,
    *,
    minimum: int = 1,
    maximum: int | None = None,
    error: type[AutopruneError] = ParameterError,
) -> int:
    """Return ``value`` if it is an int of at least ``minimum`` (and at most ``maximum``).

    Example:
        >>> check_positive_int("rounds", 10**6, maximum=100)
        Traceback (most recent call last):
        ...
        autoprune.errors.ParameterError: The 'rounds' parameter must be an integer in [1, 100]. Got 1000000 instead.
    """
    return validate(name, value, Interval(int, minimum, maximum), error=error)


def check_seed(
    name: str,
    value: Any,
    *,
    low: int = 0,
    high: int = MAX_SEED,
    error: type[AutopruneError] = ParameterError,
) -> int:
    """Return ``value`` if it is an integer seed in ``[low, high)`` (default ``[0, 2**63)``)."""
    return validate(name, value, Interval(int, low, high, closed="left"), error=error)


def check_choice(
    name: str,
    value: Any,
    choices: Iterable[str],
    *,
    error: type[AutopruneError] = ParameterError,
) -> str:
    """Return ``value`` if it is one of ``choices``.

    Example:
        >>> check_choice("scope", "local", ("local", "global"))
        'local'
    """
    return validate(name, value, Options(choices), error=error)
