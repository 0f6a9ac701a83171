"""Where a study lives: a journal file in the run directory, or a database URL.

:func:`open_storage` is the one way a study's storage is opened. It never
creates anything when it is only looking a study up (``create=False``): a
missing journal or SQLite file is a one-line :class:`RunError`, not a new empty
file. A journal whose last write was cut short (a full disk, a killed process)
is repaired first (:func:`repair_journal`). With a database, every running trial
sends a heartbeat; a trial whose worker stopped sending them for
``GRACE_PERIOD`` seconds is failed and re-queued (see ``_worker.requeue_lost``).

Example:
    >>> import tempfile, pathlib
    >>> run = pathlib.Path(tempfile.mkdtemp())
    >>> store = open_storage(run, None, create=True)
    >>> (store.journal.name, store.heartbeat)
    ('study.journal', False)
    >>> open_storage(run / "elsewhere", None, create=False)
    Traceback (most recent call last):
    ...
    autoprune.errors.RunError: ...elsewhere holds no study: it has no study.journal (start one with 'autoprune search', or pass --storage).
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from autoprune.errors import RunError

JOURNAL = "study.journal"
HEARTBEAT_INTERVAL = (
    10  # seconds between heartbeats of a running trial (AUTOPRUNE_HEARTBEAT_INTERVAL)
)
GRACE_PERIOD = (
    30  # seconds without a heartbeat before a trial counts as dead (AUTOPRUNE_GRACE_PERIOD)
)
CREATE_ATTEMPTS = 5
RECORD_START = b'{"op_code":'  # every journal record starts so


@dataclass
class Store:
    """An opened Optuna storage and what the search needs to know about it."""

    storage: object  # an optuna.storages.BaseStorage
    url: str | None  # None: the run directory's journal
    journal: Path | None = None  # the journal file, for the default storage
    heartbeat: bool = False  # running trials send heartbeats (database storages)
    grace_period: int = GRACE_PERIOD

    @property
    def lock_file(self) -> Path | None:
        """A file whose kernel lock guards the study's once-only steps, when the storage is local."""
        if self.journal is not None:
            return self.journal.with_name(".autoprune.lock")
        path = sqlite_path(self.url) if self.url else None
        return None if path is None else path.with_name(path.name + ".autoprune.lock")


def sqlite_path(url: str) -> Path | None:
    """The database file of a ``sqlite:///`` URL (plain or ``file:`` URI form), else None.

    Example:
        >>> sqlite_path("sqlite:///file:/tmp/s.db?mode=ro&uri=true").as_posix()
        '/tmp/s.db'
    """
    if not url.startswith("sqlite:///"):
        return None
    path = url.removeprefix("sqlite:///").partition("?")[0].removeprefix("file:")
    return Path(path) if path and path != ":memory:" else None


def open_storage(run_dir: Path, url: str | None, *, create: bool) -> Store:
    """The study storage: the run directory's journal by default, or an Optuna database URL."""
    if url is None:
        return _journal_store(Path(run_dir), create=create)
    if "://" not in url:
        raise RunError(
            "--storage must be a database URL such as sqlite:///study.db or postgresql://host/db. "
            f"Got {url[:200]!r} instead."
        )
    path = sqlite_path(url)
    if path is not None and not create and not path.is_file():
        raise RunError(f"{path} does not exist: no study is stored there.")
    return database_store(url)


def _journal_store(run_dir: Path, *, create: bool) -> Store:
    import optuna
    from optuna.storages.journal import JournalFileBackend

    journal = run_dir / JOURNAL
    if not journal.is_file():
        if not create:
            raise RunError(
                f"{run_dir} holds no study: it has no {JOURNAL} "
                "(start one with 'autoprune search', or pass --storage)."
            )
        if run_dir.exists() and not run_dir.is_dir():
            raise RunError(f"The run directory {run_dir} is a file; choose another --out.")
        run_dir.mkdir(parents=True, exist_ok=True)
    else:
        repair_journal(journal)
    storage = optuna.storages.JournalStorage(JournalFileBackend(str(journal)))
    return Store(storage, None, journal=journal)


def repair_journal(path: Path) -> int:
    """Drop records a failed write left half-written; returns how many were dropped.

    A write cut short (disk full, process killed mid-write) leaves a record
    without its line end; the next write would glue its record onto it and
    every later read would fail. The torn tail is cut off; a torn record glued to
    a whole one keeps the whole one. The damaged file is kept beside the journal
    (``study.journal.damaged-<time>``) before the repaired one replaces it. Nothing
    a finished write put there is lost: a torn record is one whose write failed.
    """
    from optuna.storages.journal import JournalFileSymlinkLock

    lock = JournalFileSymlinkLock(str(path))
    lock.acquire()  # the journal writers' own lock: no record is appended meanwhile
    try:
        data = path.read_bytes()
        lines = data.split(b"\n")
        kept, dropped = [], 0
        for number, line in enumerate(lines[:-1], start=1):
            record = _whole_record(line)
            if record is None:
                raise RunError(
                    f"{path} line {number} is damaged beyond repair (not a journal record). "
                    "Restore the journal from a backup, or start the search in a new --out."
                )
            dropped += record is not line
            kept.append(record)
        dropped += bool(lines[-1])  # a last record without its line end: its write never finished
        if dropped:
            stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
            shutil.copy2(path, path.with_name(f"{path.name}.damaged-{stamp}"))
            from autoprune._io import write_bytes

            write_bytes(path, b"".join(line + b"\n" for line in kept))
        return dropped
    finally:
        lock.release()


def _whole_record(line: bytes) -> bytes | None:
    """``line`` if it is a record; else the whole record at its end (a torn one glued before it)."""
    try:
        json.loads(line)
        return line
    except ValueError:
        pass
    start = line.find(RECORD_START, 1)
    while start != -1:
        try:
            json.loads(line[start:])
            return line[start:]
        except ValueError:
            start = line.find(RECORD_START, start + 1)
    return None


def _seconds(name: str, default: int) -> int:
    text = os.environ.get(name)
    if text is None:
        return default
    if not text.isdigit() or int(text) < 1:
        raise RunError(
            f"{name} must be a whole number of seconds >= 1. Got {text[:200]!r} instead."
        )
    return int(text)


def database_store(url: str) -> Store:
    """An Optuna RDB storage for ``url``, with heartbeats; dead workers' trials are re-queued."""
    import warnings

    import optuna
    from optuna.storages import RDBStorage

    from autoprune.search._worker import requeue_stale

    heartbeat_interval = _seconds("AUTOPRUNE_HEARTBEAT_INTERVAL", HEARTBEAT_INTERVAL)
    grace_period = _seconds("AUTOPRUNE_GRACE_PERIOD", GRACE_PERIOD)
    last: Exception | None = None
    for attempt in range(CREATE_ATTEMPTS):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage = RDBStorage(
                    url,
                    heartbeat_interval=heartbeat_interval,
                    grace_period=grace_period,
                    heartbeat_stale_trial_callback=requeue_stale,
                )
            return Store(storage, url, heartbeat=True, grace_period=grace_period)
        except ImportError as exc:
            raise RunError(
                f"Cannot open the storage {url[:200]!r}: its database driver is missing ({exc}); "
                "install autoprune's 'cluster' extra (PostgreSQL) or the driver for your database."
            ) from exc
        except Exception as exc:  # workers starting together race to create the tables: try again
            last = exc
            time.sleep(0.5 * (attempt + 1))
    raise RunError(
        f"Cannot open the storage {url[:200]!r}: {type(last).__name__}: {str(last).splitlines()[0][:200]}"
    ) from last


def storage_errors(function):
    """Decorator: a storage that refuses a read or write becomes one :class:`RunError` line.

    Optuna wraps a database's refusal (a read-only SQLite file, a dropped
    connection) in ``StorageInternalError``; the root cause is what the user
    needs to read.
    """
    import functools

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        import optuna

        try:
            return function(*args, **kwargs)
        except optuna.exceptions.StorageInternalError as exc:
            cause = exc
            while cause.__cause__ is not None:
                cause = cause.__cause__
            text = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
            raise RunError(
                f"The study storage refused the operation ({type(cause).__name__}: {text[:200]}); "
                "check that it is writable and reachable."
            ) from exc

    return wrapper
