"""Database storages (SQLite, PostgreSQL, MySQL URLs) with heartbeats.

With a database, every running trial sends a heartbeat; a trial whose worker
stopped sending them for ``GRACE_PERIOD`` seconds is marked failed and
re-queued with the same parameters (Optuna's ``RetryFailedTrialCallback``).

Example:
    >>> # storage = database_storage("postgresql://user@127.0.0.1/autoprune")
"""

from __future__ import annotations

from autoprune.errors import RunError

HEARTBEAT_INTERVAL = 10  # seconds between heartbeats of a running trial
GRACE_PERIOD = 30  # seconds without a heartbeat before a trial counts as dead
MAX_RETRY = 3


def database_storage(url: str, *, heartbeat_interval: int = HEARTBEAT_INTERVAL, grace_period: int = GRACE_PERIOD):
    """An Optuna RDB storage for ``url``, with heartbeats and retries of dead trials."""
    import optuna
    from optuna.storages import RDBStorage, RetryFailedTrialCallback

    if "://" not in url:
        raise RunError(f"--storage must be a database URL such as sqlite:///study.db or postgresql://host/db. Got {url!r} instead.")
    try:
        return RDBStorage(
            url,
            heartbeat_interval=heartbeat_interval,
            grace_period=grace_period,
            failed_trial_callback=RetryFailedTrialCallback(max_retry=MAX_RETRY),
        )
    except (optuna.exceptions.StorageInternalError, ImportError, ValueError) as exc:
        raise RunError(f"Cannot open the storage {url!r}: {type(exc).__name__}: {exc}") from exc
    except Exception as exc:  # SQLAlchemy's connection errors and friends
        raise RunError(f"Cannot open the storage {url!r}: {type(exc).__name__}: {str(exc).splitlines()[0]}") from exc
