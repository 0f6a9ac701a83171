"""The project's own error types, all of them in this one module.

Every error autoprune raises on bad input is an :class:`AutopruneError`, so a
caller (and the CLI) can tell a user mistake from a bug. It is also a
``ValueError``: code that already catches ``ValueError`` around a call keeps
working. Messages name the parameter, field or file, the value and what was
expected.

Example:
    >>> from autoprune.errors import AutopruneError, ParameterError, TaskError
    >>> issubclass(TaskError, AutopruneError), issubclass(ParameterError, ValueError)
    (True, True)
"""

from __future__ import annotations


class AutopruneError(ValueError):
    """Base class of every error autoprune raises on bad input or state."""


class ParameterError(AutopruneError):
    """An argument of a function or a command-line flag has the wrong type or value."""


class TaskError(AutopruneError):
    """A task cannot be found, loaded, or does not run."""


class DataError(AutopruneError):
    """Data files are missing, unreadable or inconsistent."""


class PruningError(AutopruneError):
    """A pruning request is invalid for the model (layer, ratio, granularity)."""


class BudgetError(AutopruneError):
    """A budget is malformed, unknown, or cannot be met."""


class SearchSpaceError(AutopruneError):
    """A search-space file or mapping is invalid."""


class PolicyError(AutopruneError):
    """A policy file is invalid, of an unknown version, or does not fit the model."""


class RunError(AutopruneError):
    """A run directory is missing files or holds no usable result."""


class TrainingDiverged(AutopruneError, RuntimeError):
    """The loss became NaN or infinite (the command line says so in one line)."""


class TrialFailed(Exception):
    """A search trial could not produce a result; the message is recorded as its reason.

    Not an :class:`AutopruneError`: the search records it and goes on with the next trial.
    """


class Refused(ValueError):
    """Input text refused on purpose (an alias, a repeated key, too large), not malformed.

    Raised by the strict YAML/JSON loaders; the file readers turn it into the caller's
    :class:`AutopruneError` naming the file.
    """


__all__ = [
    "AutopruneError",
    "BudgetError",
    "DataError",
    "ParameterError",
    "PolicyError",
    "PruningError",
    "Refused",
    "RunError",
    "SearchSpaceError",
    "TaskError",
    "TrainingDiverged",
    "TrialFailed",
]
