"""How and where a search runs, beyond what it searches: storage, workers, device, latency conditions.

Example:
    >>> SearchOptions(n_jobs=2, latency_threads=2).n_jobs
    2
    >>> SearchOptions(n_jobs=0)
    Traceback (most recent call last):
    ...
    autoprune.errors.ParameterError: The 'n_jobs' parameter must be an integer >= 1. Got 0 instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from autoprune._constraints import Interval, Options
from autoprune._validation import validate_fields

OPTION_FIELDS = {
    "n_jobs": Interval(int, 1, None),
    "backend": Options(("loky", "dask")),
    "latency_batch_size": Interval(int, 1, None),
    "latency_threads": Interval(int, 1, None),
    "max_failures": [None, Interval(int, 0, None)],
}


@dataclass(frozen=True)
class SearchOptions:
    """The optional settings of :func:`autoprune.search` (every field has a default)."""

    storage: str | None = None  # an Optuna URL; default: study.journal in the run directory
    study_name: str | None = None  # default: the run directory's name
    n_jobs: int = 1  # worker processes on this study
    backend: str = "loky"  # where the workers run: "loky" (this machine) or "dask"
    scheduler: str | None = None  # the Dask scheduler's address (default: a local cluster)
    device: str = "cpu"  # where models train and where latency is measured
    sensitivity: bool = True  # the sensitivity analysis: caps and seed policies
    latency_batch_size: int = 64  # the batch of latency budgets
    latency_threads: int = 1  # the torch threads of latency budgets
    max_failures: int | None = None  # failed trials replaced (default: as many as trials)
    task_options: dict = field(default_factory=dict)  # options of a built-in task's factory

    def __post_init__(self) -> None:
        validate_fields(self, OPTION_FIELDS)
