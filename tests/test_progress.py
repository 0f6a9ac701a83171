"""Progress output: a tqdm bar on a terminal, a few compact lines in a log, nothing when asked."""

from __future__ import annotations

import io

import pytest
from tqdm.auto import tqdm

from autoprune._progress import ProgressLine, progress_bar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def progress_on(monkeypatch):
    monkeypatch.delenv("AUTOPRUNE_NO_PROGRESS", raising=False)


def test_a_log_gets_a_bounded_number_of_compact_lines(progress_on, monkeypatch):
    monkeypatch.setattr("autoprune._progress._clock", lambda: 0.0)  # only the fraction done counts
    out = io.StringIO()
    bar = progress_bar(total=10_000, desc="train", unit="step", file=out)
    assert not isinstance(bar, tqdm)
    for step in range(10_000):
        bar.update(1)
        if step % 50 == 0:
            bar.set_postfix(loss="0.1234")
    bar.close()
    lines = out.getvalue().splitlines()
    assert 1 <= len(lines) <= 12
    assert "\r" not in out.getvalue()  # never a redrawn bar
    assert lines[0].startswith("train: 1000/10000 steps (10%) in 0 s")
    assert lines[-1].startswith("train: 10000/10000 steps (100%) in 0 s")
    assert lines[-1].endswith("loss=0.1234")


def test_lines_come_each_tenth_or_after_the_interval_and_once_at_the_end():
    now = [0.0]
    out = io.StringIO()
    bar = ProgressLine(
        total=200, desc="search", unit="trial", file=out, every=60, clock=lambda: now[0]
    )
    bar.update(19)  # under a tenth, no time passed: quiet
    assert out.getvalue() == ""
    now[0] = 61.0
    bar.update(1)
    bar.n = 40  # the search sets n and refreshes
    bar.set_postfix_str("best feasible 0.9500")
    bar.refresh()
    bar.refresh()  # nothing new: no second line
    now[0] = 90.0
    bar.update(3)
    bar.close()
    bar.close()
    assert out.getvalue().splitlines() == [
        "search: 20/200 trials (10%) in 61 s, ~9.2 min left",
        "search: 40/200 trials (20%) in 61 s, ~4.1 min left, best feasible 0.9500",
        "search: 43/200 trials (22%) in 90 s, ~5.5 min left, best feasible 0.9500",
    ]


def test_without_a_total_lines_come_by_time_only():
    now = [0.0]
    out = io.StringIO()
    bar = ProgressLine(total=None, desc="", unit="it", file=out, every=10, clock=lambda: now[0])
    bar.update(500)
    now[0] = 10.0
    bar.update(1)
    bar.write("a message")
    assert out.getvalue().splitlines() == ["501 it in 10 s", "a message"]


def test_a_terminal_gets_the_tqdm_bar(progress_on):
    out = Terminal()
    bar = progress_bar(total=10, desc="train", unit="step", file=out)
    assert isinstance(bar, tqdm) and not bar.disable
    bar.update(10)
    bar.close()
    assert "train" in out.getvalue() and "\r" in out.getvalue()


@pytest.mark.parametrize("stream", [Terminal, io.StringIO])
def test_disabled_or_no_progress_is_silent(stream, monkeypatch):
    for enabled, env in ((False, None), (True, "1")):
        if env is None:
            monkeypatch.delenv("AUTOPRUNE_NO_PROGRESS", raising=False)
        else:
            monkeypatch.setenv("AUTOPRUNE_NO_PROGRESS", env)
        out = stream()
        bar = progress_bar(total=5, desc="x", enabled=enabled, file=out)
        bar.update(5)
        bar.set_postfix(loss=1.0)
        bar.close()
        assert out.getvalue() == ""
        assert bar.total == 5
