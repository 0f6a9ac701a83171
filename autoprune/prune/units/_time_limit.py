"""A time limit on the main thread: finding structured units never hangs.

:func:`time_limit` raises ``TimeoutError`` in the code it guards once
``seconds`` have passed (a ``SIGALRM`` timer; Python code is interrupted between
two bytecodes, a long native call when it returns); the error's ``limit`` is
the object the ``with`` statement gave, so nested limits tell theirs apart.
Until the guarded code has stopped, the error is raised again every
:data:`RETRY_SECONDS`: an error raised while a finaliser runs (garbage collected
mid-loop) is swallowed by Python, and a single one would leave the code running.
Limits nest: an inner limit never outlives an outer one, and the outer one is
re-armed on exit. Off the main thread, or where there is no ``SIGALRM``, the
code runs without a limit.

Example:
    >>> with time_limit(5.0, "counting"):
    ...     sum(range(10))
    45
    >>> try:
    ...     with time_limit(0.05, "spinning"):
    ...         while True:
    ...             pass
    ... except TimeoutError as exc:
    ...     print(exc)
    spinning took more than 0.05 s
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time

RETRY_SECONDS = 0.05  # how soon a swallowed TimeoutError is raised again


class Limit:
    """The handle of one :func:`time_limit` (``TimeoutError.limit`` says which fired)."""

    def __init__(self, seconds: float | None, what: str) -> None:
        self.seconds, self.what = seconds, what

    def error(self) -> TimeoutError:
        error = TimeoutError(f"{self.what} took more than {self.seconds:g} s")
        error.limit = self
        return error


def fired(exc: BaseException, limit: Limit) -> bool:
    """Whether ``exc`` is the ``TimeoutError`` of ``limit`` (not of an outer limit)."""
    return isinstance(exc, TimeoutError) and getattr(exc, "limit", None) is limit


def can_limit() -> bool:
    """Whether limits work here (the main thread of a platform with ``SIGALRM``)."""
    return hasattr(signal, "SIGALRM") and threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def time_limit(seconds: float | None, what: str):
    """Raise ``TimeoutError("<what> took more than <seconds> s")`` when ``seconds`` pass."""
    limit = Limit(seconds, what)
    if seconds is None or not can_limit():
        yield limit
        return
    outer_left, _ = signal.getitimer(signal.ITIMER_REAL)
    if outer_left and outer_left <= seconds:
        yield limit  # the outer limit comes first
        return
    start = time.monotonic()
    active = [True]

    def expire(signum, frame):
        if active[0]:
            # raised again soon, should this one be swallowed
            signal.setitimer(signal.ITIMER_REAL, RETRY_SECONDS)
            raise limit.error()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield limit
    finally:
        active[0] = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_left:
            left = outer_left - (time.monotonic() - start)
            signal.setitimer(signal.ITIMER_REAL, max(left, 1e-3))
