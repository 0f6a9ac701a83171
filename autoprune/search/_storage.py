"""Database storages (SQLite, PostgreSQL, MySQL URLs) with heartbeats.

With a database, every running trial sends a heartbeat; a trial whose worker
stopped sending them for ``GRACE_PERIOD`` seconds is marked failed and
re-queued with the same parameters (Optuna's ``RetryHeartbeatStaleTrialCallback``).

Example:
    >>> # storage = database_storage("postgresql://user@127.0.0.1/autoprune")
"""

from __future__ import annotations

import os
import time

from autoprune.errors import RunError

HEARTBEAT_INTERVAL = (
    10  # seconds between heartbeats of a running trial (AUTOPRUNE_HEARTBEAT_INTERVAL)
)
GRACE_PERIOD = (
    30  # seconds without a heartbeat before a trial counts as dead (AUTOPRUNE_GRACE_PERIOD)
)
MAX_RETRY = 3
CREATE_ATTEMPTS = 5


def _seconds(name: str, default: int) -> int:
    text = os.environ.get(name)
    if text is None:
        return default
    if not text.isdigit() or int(text) < 1:
        raise RunError(f"{name} must be a whole number of seconds >= 1. Got {text!r} instead.")
    return int(text)


def database_storage(
    url: str, *, heartbeat_interval: int | None = None, grace_period: int | None = None
):
    """An Optuna RDB storage for ``url``, with heartbeats and retries of dead trials."""
    import warnings

    import optuna
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    heartbeat_interval = heartbeat_interval or _seconds(
        "AUTOPRUNE_HEARTBEAT_INTERVAL", HEARTBEAT_INTERVAL
    )
    grace_period = grace_period or _seconds("AUTOPRUNE_GRACE_PERIOD", GRACE_PERIOD)

    if "://" not in url:
        raise RunError(
            f"--storage must be a database URL such as sqlite:///study.db or postgresql://host/db. Got {url!r} instead."
        )
    last: Exception | None = None
    for attempt in range(CREATE_ATTEMPTS):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return RDBStorage(
                    url,
                    heartbeat_interval=heartbeat_interval,
                    grace_period=grace_period,
                    heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(
                        max_retry=MAX_RETRY
                    ),
                )
        except ImportError as exc:
            raise RunError(
                f"Cannot open the storage {url!r}: its database driver is missing ({exc}); "
                "install autoprune's 'cluster' extra (PostgreSQL) or the driver for your database."
            ) from exc
        except Exception as exc:  # workers starting together race to create the tables: try again
            last = exc
            time.sleep(0.5 * (attempt + 1))
    raise RunError(
        f"Cannot open the storage {url!r}: {type(last).__name__}: {str(last).splitlines()[0]}"
    ) from last
