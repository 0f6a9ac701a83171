"""The statistics of the tables: mean, standard deviation, 95% confidence interval, Welch's test.

A cell says ``ahead`` or ``behind`` only when Welch's t-test (unequal
variances, scipy) gives p < :data:`ALPHA`; otherwise ``level``. With fewer than
two seeds on either side there is no test: the verdict is ``level`` and the
p-value is missing. Two samples without any spread (a deterministic method)
that differ are as different as they can be (p = 0); equal ones give p = 1.

Example:
    >>> s = summarize([0.90, 0.92, 0.94])
    >>> round(s.mean, 4), round(s.std, 4), s.n, round(s.ci95[1] - s.mean, 4)
    (0.92, 0.02, 3, 0.0497)
    >>> compare([0.95, 0.951, 0.949, 0.952, 0.95], [0.90, 0.91, 0.905, 0.9, 0.902]).verdict
    'ahead'
    >>> compare([0.9, 0.92], [0.91, 0.905]).verdict
    'level'
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

ALPHA = 0.05


@dataclass(frozen=True)
class Summary:
    """Mean, standard deviation (n-1), sample size and the 95% t confidence interval of a sample."""

    mean: float
    std: float
    n: int
    ci95: tuple[float, float]


@dataclass(frozen=True)
class Comparison:
    """A against B: the difference of means, Welch's p-value (None: no test) and the verdict."""

    difference: float
    p_value: float | None
    verdict: str


def summarize(values: Sequence[float]) -> Summary:
    """The :class:`Summary` of ``values`` (at least one)."""
    from scipy import stats

    values = [float(v) for v in values]
    mean = statistics.fmean(values)
    if len(values) < 2:
        return Summary(mean, 0.0, len(values), (mean, mean))
    std = statistics.stdev(values)
    half = float(stats.t.ppf(0.975, len(values) - 1)) * std / math.sqrt(len(values))
    return Summary(mean, std, len(values), (mean - half, mean + half))


def welch_p(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Two-sided p-value of Welch's t-test of ``a`` against ``b`` (None below two values a side)."""
    from scipy import stats

    if len(a) < 2 or len(b) < 2:
        return None
    if statistics.stdev(a) == 0 and statistics.stdev(b) == 0:
        return 1.0 if statistics.fmean(a) == statistics.fmean(b) else 0.0
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def compare(a: Sequence[float], b: Sequence[float], *, alpha: float = ALPHA) -> Comparison:
    """Whether ``a`` is ahead of, level with or behind ``b`` (higher is better)."""
    difference = statistics.fmean(a) - statistics.fmean(b)
    p = welch_p(a, b)
    if p is None or p >= alpha or difference == 0:
        verdict = "level"
    else:
        verdict = "ahead" if difference > 0 else "behind"
    return Comparison(difference, p, verdict)
