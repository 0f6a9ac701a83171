"""The search's progress line: trials done, the best feasible fine-tuned metric, failures, time left.

Example:
    >>> import optuna
    >>> study = optuna.create_study(directions=["maximize", "minimize"])
    >>> progress = SearchProgress(study, n_trials=40, enabled=False)
    >>> progress.bar.n, progress.bar.total
    (0, 40)
"""

from __future__ import annotations

import math

from optuna.trial import TrialState

from autoprune._progress import progress_bar
from autoprune.search._results import front_of, trials_frame
from autoprune.search._worker import count


class SearchProgress:
    """A progress bar over the study's completed trials (tqdm's estimate of the time left)."""

    def __init__(self, study, n_trials: int, enabled: bool) -> None:
        self.n_trials = n_trials
        self.bar = progress_bar(total=n_trials, desc="search", unit="trial", enabled=enabled)
        self.update(study)

    def update(self, study) -> None:
        self.bar.n = min(count(study, TrialState.COMPLETE), self.n_trials)
        trials = trials_frame(study)
        front = front_of(trials)
        best = front.val_metric.max() if not front.empty else math.nan
        failed = int((trials.state == "FAIL").sum())
        self.bar.set_postfix_str(
            f"best feasible {best:.4f}" + (f", {failed} failed" if failed else ""), refresh=False
        )
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()
