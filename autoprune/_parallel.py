"""Where parallel work runs: local processes (joblib's loky) or a Dask cluster.

The sensitivity analysis fans out over layers and ``--n-jobs`` search workers
over processes; both go through :func:`joblib_backend`, so pointing them at a
Dask cluster is one flag: ``--backend dask --scheduler tcp://host:8786``
(without an address, a local Dask cluster is started for the call).

Example:
    >>> import joblib
    >>> with joblib_backend("loky") as n_jobs_hint:
    ...     joblib.Parallel(n_jobs=1)(joblib.delayed(abs)(-1) for _ in range(2))
    [1, 1]
"""

from __future__ import annotations

import contextlib

from autoprune._validation import check_choice

BACKENDS = ("loky", "dask")


@contextlib.contextmanager
def joblib_backend(backend: str = "loky", scheduler: str | None = None):
    """Run the ``joblib.Parallel`` calls of the block on ``backend``; yields the worker count to use (or None)."""
    import joblib

    check_choice("backend", backend, BACKENDS)
    if backend == "loky":
        yield None
        return
    try:
        from distributed import Client
    except ImportError as exc:
        from autoprune.errors import AutopruneError

        raise AutopruneError(
            "The dask backend needs the 'cluster' extra: pip install 'autoprune[cluster]'."
        ) from exc
    client = (
        Client(scheduler)
        if scheduler
        else Client(processes=True, n_workers=2, threads_per_worker=1, dashboard_address=None)
    )
    try:
        workers = len(client.scheduler_info().get("workers", {})) or None
        with joblib.parallel_config(backend="dask"):
            yield workers
    finally:
        client.close()
