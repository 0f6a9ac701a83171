"""The project's own error types.

Every error autoprune raises on bad input is an :class:`AutopruneError`, so a
caller (and the CLI) can tell a user mistake from a bug. Messages name the
field, the value and what was expected.

Example:
    >>> from autoprune.errors import AutopruneError, TaskError
    >>> issubclass(TaskError, AutopruneError)
    True
"""

from __future__ import annotations


class AutopruneError(Exception):
    """Base class of every error autoprune raises on bad input or state."""


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
