"""The search: Optuna over pruning policies under a budget. The only package that imports optuna.

Where things live: :mod:`._driver` (``search()`` top to bottom, ``worker_main``,
``open_run``), :mod:`._prepare` (the once-per-study work), :mod:`._study` (the
study's lock-guarded steps), :mod:`._worker` (claiming and running trials,
lost-trial recovery), :mod:`._storage` (journal and database storages),
:mod:`._context` (what trials share), :mod:`._candidate` and :mod:`._objective`
(one trial), :mod:`._seeds` (the heuristic policies tried first),
:mod:`._space` (search-space files), :mod:`._results` (tables and the front).

Example:
    >>> from autoprune.search import SearchOptions, available_spaces
    >>> "quick" in available_spaces(), SearchOptions().n_jobs
    (True, 1)
"""

from __future__ import annotations

from autoprune.search._context import SearchContext
from autoprune.search._driver import open_run, search, worker_main
from autoprune.search._options import SearchOptions
from autoprune.search._prepare import PreparedStudy
from autoprune.search._results import SearchResult, front_of, trials_frame
from autoprune.search._setup import SearchSetup
from autoprune.search._space import SearchSpace, available_spaces, load_space

__all__ = [
    "PreparedStudy",
    "SearchContext",
    "SearchOptions",
    "SearchResult",
    "SearchSetup",
    "SearchSpace",
    "available_spaces",
    "front_of",
    "load_space",
    "open_run",
    "search",
    "trials_frame",
    "worker_main",
]
