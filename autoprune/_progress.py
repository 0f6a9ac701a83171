"""Progress: a tqdm bar on a terminal, a compact line now and then elsewhere, nothing when asked.

On a terminal (or in a notebook) :func:`progress_bar` draws a tqdm bar that
redraws in place. Anywhere else (a log file, CI, a pipe) it writes a line such as
``search: 40/200 trials (20%) in 35 s, ~2.3 min left`` each time another tenth
of the total is done, after :data:`LINE_SECONDS` with progress, and once at the
end: at most a dozen lines for a job that does not last long, never a redrawn bar.
``enabled=False`` or the environment variable ``AUTOPRUNE_NO_PROGRESS`` silence both.

Example:
    >>> import io
    >>> out, now = io.StringIO(), iter([0.0, 35.0])
    >>> bar = ProgressLine(total=200, desc="search", unit="trial", file=out, clock=lambda: next(now))
    >>> bar.update(40)
    >>> print(out.getvalue(), end="")
    search: 40/200 trials (20%) in 35 s, ~2.3 min left
"""

from __future__ import annotations

import os
import sys
import time

LINE_SECONDS = 60.0  # a line at least this often while there is progress (not on a terminal)
LINE_STEPS = 10  # and one each time another tenth of the total is done
_clock = time.monotonic  # the lines' clock (tests replace it)


def progress_bar(
    *,
    total: int | None,
    desc: str,
    unit: str = "it",
    enabled: bool = True,
    file=None,
    **kwargs,
):
    """A progress object with tqdm's ``update``/``set_postfix``/``close`` on ``file`` (stderr).

    A tqdm bar when ``file`` is a terminal or the code runs in a notebook, a
    :class:`ProgressLine` otherwise; silent when ``enabled`` is False or
    AUTOPRUNE_NO_PROGRESS is set. ``kwargs`` go to tqdm.
    """
    from tqdm.auto import tqdm

    stream = sys.stderr if file is None else file
    if (not enabled) or os.environ.get("AUTOPRUNE_NO_PROGRESS"):
        return tqdm(total=total, desc=desc, unit=unit, disable=True, file=stream)
    if not _interactive(stream):
        return ProgressLine(total=total, desc=desc, unit=unit, file=stream, clock=_clock)
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        file=stream,
        dynamic_ncols=True,
        leave=False,
        **kwargs,
    )


def _interactive(stream) -> bool:
    """True when ``stream`` is a terminal or the code runs in a Jupyter kernel."""
    try:
        if stream.isatty():
            return True
    except (AttributeError, ValueError):  # no isatty, or a closed file
        return False
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    return type(shell).__name__ == "ZMQInteractiveShell"


class ProgressLine:
    """A bar for logs: one line per tenth of ``total``, or per ``every`` seconds of progress.

    It has the part of tqdm's interface the package uses: ``n``, ``total``,
    ``update``, ``refresh``, ``set_description``, ``set_postfix``,
    ``set_postfix_str``, ``write`` and ``close``. ``clock`` (seconds) is injectable.
    """

    def __init__(
        self,
        *,
        total: int | None,
        desc: str,
        unit: str = "it",
        file=None,
        every: float = LINE_SECONDS,
        clock=time.monotonic,
    ) -> None:
        self.total, self.desc, self.unit, self.n = total, desc, unit, 0
        self.file = sys.stderr if file is None else file
        self.postfix = ""
        self._every, self._clock = every, clock
        self._start = self._last_time = clock()
        self._last_n, self._last_step, self._closed = 0, 0, False

    def update(self, n: int = 1) -> None:
        self.n += n
        self._maybe_write()

    def refresh(self) -> None:
        self._maybe_write()

    def set_description(self, desc: str | None = None, refresh: bool = True) -> None:
        self.desc = desc or ""

    def set_postfix(self, ordered_dict=None, refresh: bool = True, **kwargs) -> None:
        items = {**(ordered_dict or {}), **kwargs}
        self.postfix = ", ".join(f"{key}={value}" for key, value in items.items())

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self.postfix = str(s)

    def write(self, s: str, file=None, end: str = "\n") -> None:
        """Write ``s`` as its own line (tqdm's ``write``)."""
        stream = self.file if file is None else file
        stream.write(s + end)
        stream.flush()

    def close(self) -> None:
        """Write the last line when it says more than the one before; then stay quiet."""
        if not self._closed and self.n != self._last_n:
            self._emit(self._clock())
        self._closed = True

    def __enter__(self) -> ProgressLine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _step(self) -> int:
        """How many tenths of the total are done (0 without a total)."""
        if not self.total:
            return 0
        return min(LINE_STEPS, int(LINE_STEPS * self.n / self.total))

    def _maybe_write(self) -> None:
        if self._closed or self.n == self._last_n:
            return
        now = self._clock()
        if self._step() > self._last_step or now - self._last_time >= self._every:
            self._emit(now)

    def _emit(self, now: float) -> None:
        self.write(self.line(now - self._start))
        self._last_n, self._last_step, self._last_time = self.n, self._step(), now

    def line(self, elapsed: float) -> str:
        """``desc: n/total units (p%) in <elapsed>, ~<left> left, <postfix>``."""
        units = self.unit if self.unit == "it" else f"{self.unit}s"
        text = f"{self.desc}: " if self.desc else ""
        if self.total:
            text += f"{self.n}/{self.total} {units} ({100 * self.n / self.total:.0f}%)"
        else:
            text += f"{self.n} {units}"
        text += f" in {_duration(elapsed)}"
        if self.total and 0 < self.n < self.total:
            text += f", ~{_duration(elapsed * (self.total - self.n) / self.n)} left"
        return text + (f", {self.postfix}" if self.postfix else "")


def _duration(seconds: float) -> str:
    """``35 s``, ``4.2 min`` or ``1.5 h``."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
