"""How and where a sensitivity analysis runs, beyond what it measures: workers, cache, progress.

Example:
    >>> SensitivityOptions(n_jobs=2, cache=False).parallel
    True
    >>> SensitivityOptions(n_jobs=0)
    Traceback (most recent call last):
    ...
    autoprune.errors.ParameterError: The 'n_jobs' parameter must be one of -1 or an integer >= 1. Got 0 instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from autoprune._constraints import Interval, Options
from autoprune._parallel import BACKENDS
from autoprune._validation import validate_fields
from autoprune.sensitivity._cache import PointCache

OPTION_FIELDS = {
    "n_jobs": [Options((-1,)), Interval(int, 1, None)],  # -1: every core (or Dask worker)
    "backend": Options(BACKENDS),
}


@dataclass(frozen=True)
class SensitivityOptions:
    """The optional run settings of :func:`~autoprune.sensitivity.analyse_sensitivity`.

    None of them changes the table: ``n_jobs=1`` and ``n_jobs=4``, local processes
    and a Dask cluster, a cold and a warm cache all give the same numbers.
    """

    n_jobs: int = 1  # worker processes; -1: every core (or every Dask worker)
    backend: str = "loky"  # "loky" (local processes) or "dask"
    scheduler: str | None = None  # the Dask scheduler's address (default: a local cluster)
    cache: bool | str | Path = True  # True: the default cache directory; False: none; or a folder
    progress: bool = True  # a progress bar over the units

    def __post_init__(self) -> None:
        validate_fields(self, OPTION_FIELDS)

    @property
    def parallel(self) -> bool:
        """Whether units run in workers (then each worker uses one torch thread)."""
        return self.n_jobs != 1 or self.backend != "loky"

    def point_cache(self) -> PointCache | None:
        """The cache of points these options name (None: no cache)."""
        if not self.cache:
            return None
        from autoprune._io import cache_dir

        return PointCache(cache_dir() / "sensitivity" if self.cache is True else Path(self.cache))
