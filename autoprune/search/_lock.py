"""One process at a time for a study's once-only steps, and never a wait on a dead holder.

Preparing a study (dense model, sensitivity analysis), enqueueing its seed
policies, re-queueing lost trials and topping up its trial slots happen under
:func:`study_lock`. Every step checks what is already done before doing it, so a
process killed half-way leaves work the next holder simply finishes.

- Local storages (the run directory's journal, a SQLite file) use a kernel file
  lock (``flock``): the kernel releases it the moment its holder dies.
- Other databases use a marker study (creating a study is atomic in every
  Optuna storage) that its holder refreshes while it works; a marker not
  refreshed for the grace period is broken by exactly one waiter.

Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / ".lock"
    >>> with FileLock(path):
    ...     FileLock(path).try_acquire()
    False
    >>> FileLock(path).try_acquire()
    True
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from autoprune.errors import RunError

POLL_SECONDS = 0.5


class FileLock:
    """An exclusive ``flock`` on ``path``; released by the kernel if the holder dies."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        """Take the lock if it is free; True if this process holds it now."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise RunError(f"Cannot create the lock file {self.path}: {exc.strerror}.") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def acquire(self) -> None:
        if not self.try_acquire():
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            fcntl.flock(fd, fcntl.LOCK_EX)  # blocks until the holder releases it or dies
            self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


class MarkerLock:
    """A lock held by owning the marker study ``<study>:autoprune-lock`` in a database storage."""

    def __init__(self, storage, study_name: str, *, grace_period: float) -> None:
        self.storage = storage
        self.name = f"{study_name}:autoprune-lock"
        self.grace_period = grace_period
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._refresher: threading.Thread | None = None
        self._first_seen: dict[int, float] = {}

    def try_acquire(self) -> bool:
        import optuna

        try:
            marker = optuna.create_study(study_name=self.name, storage=self.storage)
        except optuna.exceptions.DuplicatedStudyError:
            self._break_if_stale()
            return False
        marker.set_user_attr("owner", self.token)
        marker.set_user_attr("alive", time.time())
        self._stop.clear()
        self._refresher = threading.Thread(target=self._refresh, args=(marker,), daemon=True)
        self._refresher.start()
        return True

    def _refresh(self, marker) -> None:
        while not self._stop.wait(max(1.0, self.grace_period / 3)):
            marker.set_user_attr("alive", time.time())

    def _break_if_stale(self) -> None:
        """Delete a marker whose holder stopped refreshing it; one waiter wins the right to."""
        import optuna

        try:
            study_id = self.storage.get_study_id_from_name(self.name)
            attrs = self.storage.get_study_user_attrs(study_id)
        except KeyError:
            return
        now = time.time()
        alive = attrs.get("alive", self._first_seen.setdefault(study_id, now))
        if now - float(alive) <= self.grace_period:
            return
        try:  # the breaker study's name is unique to this marker: only one waiter gets it
            optuna.create_study(study_name=f"{self.name}-broken-{study_id}", storage=self.storage)
        except optuna.exceptions.DuplicatedStudyError:
            return
        with contextlib.suppress(KeyError):
            optuna.delete_study(study_name=self.name, storage=self.storage)

    def acquire(self) -> None:
        while not self.try_acquire():
            time.sleep(POLL_SECONDS)

    def release(self) -> None:
        import optuna

        self._stop.set()
        if self._refresher is not None:
            self._refresher.join()
            self._refresher = None
        with contextlib.suppress(KeyError):
            optuna.delete_study(study_name=self.name, storage=self.storage)


@contextlib.contextmanager
def study_lock(
    store, study_name: str, *, on_wait: Callable[[], None] | None = None
) -> Iterator[None]:
    """Hold the study's lock for the block; ``on_wait()`` is called once if another holder is busy."""
    path = store.lock_file
    lock = (
        FileLock(path)
        if path is not None
        else MarkerLock(store.storage, study_name, grace_period=store.grace_period)
    )
    if not lock.try_acquire():
        if on_wait is not None:
            on_wait()
        lock.acquire()
    try:
        yield
    finally:
        lock.release()
