"""Run the ``autoprune`` command and stop it at an exact point, for the recovery tests.

    python tests/interrupt_at.py MOMENT TRIAL -- search --task ...

MOMENT is where the process kills itself (SIGKILL), the first time trial number TRIAL gets there:

- ``after-claim``: right after its state changed to RUNNING, before anything else is written;
- ``mid-sampling``: at its second drawn parameter (the first is already stored);
- ``mid-trial``: when its candidate is built (every parameter drawn, nothing measured);
- ``hold-mid-trial``: at the same point, but the first trial of any number to get there is held
  (the process waits, for the test to kill it); the marker holds that trial's number;
- ``pause-mid-trial``: the same, but the trial goes on once ``$AUTOPRUNE_RESUME_MARKER`` exists.

A marker file (``$AUTOPRUNE_KILL_MARKER``) is written just before the kill, so the
same command run again is not killed a second time.

``hold-sensitivity``, ``hold-final`` and ``hold-report`` (TRIAL unused) hold the process inside
a phase until the test kills it: after the sensitivity analysis measured its first layer (and
before the others), after the final model was saved to its staging directory (before it is
published as ``final/``), and after ``report.md`` was written (before ``report.html``). The
marker names the phase.

``pause-after-save`` (TRIAL unused) pauses a finalize right after it saved its final
model to its staging directory: it writes ``$AUTOPRUNE_KILL_MARKER`` and waits until
the file ``$AUTOPRUNE_RESUME_MARKER`` exists.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path


def _die() -> None:
    Path(os.environ["AUTOPRUNE_KILL_MARKER"]).write_text("killed")
    os.kill(os.getpid(), signal.SIGKILL)


def _armed() -> bool:
    return not Path(os.environ["AUTOPRUNE_KILL_MARKER"]).exists()


def _hold(phase: str) -> None:
    """Write the marker and wait here until killed."""
    import threading

    Path(os.environ["AUTOPRUNE_KILL_MARKER"]).write_text(phase)
    threading.Event().wait()


def _hold_before(module, name: str, phase: str, *, calls: int = 1) -> None:
    """Hold when ``module.name`` is called for the ``calls``-th time, before it runs."""
    original, seen = getattr(module, name), []

    def held(*args, **kwargs):
        seen.append(1)
        if len(seen) == calls:
            _hold(phase)
        return original(*args, **kwargs)

    setattr(module, name, held)


def install(moment: str, number: int) -> None:
    from optuna.storages import JournalStorage
    from optuna.trial import TrialState

    import autoprune.search._objective as objective

    if moment == "after-claim":
        original = JournalStorage.set_trial_state_values

        def set_state(self, trial_id, state, values=None):
            changed = original(self, trial_id, state, values)
            if changed and state == TrialState.RUNNING and _armed():
                if self.get_trial(trial_id).number == number:
                    _die()
            return changed

        JournalStorage.set_trial_state_values = set_state
    elif moment == "mid-sampling":
        suggest = objective.suggest

        def suggest_then_die(trial, ctx):
            if trial.number != number or not _armed():
                return suggest(trial, ctx)
            drawn = []
            for name in ("suggest_float", "suggest_categorical"):
                real = getattr(trial, name)

                def counted(*args, _real=real, **kwargs):
                    drawn.append(args[0])
                    if len(drawn) == 2:
                        _die()
                    return _real(*args, **kwargs)

                setattr(trial, name, counted)
            return suggest(trial, ctx)

        objective.suggest = suggest_then_die
    elif moment in ("mid-trial", "hold-mid-trial", "pause-mid-trial"):
        import time

        import autoprune.search._scoring as scoring

        build = scoring.CandidateScorer.build
        current = {}
        call = objective.Objective.__call__

        def remember(self, trial):
            current["number"] = trial.number
            return call(self, trial)

        def build_then_die(self, policy):
            if moment != "mid-trial" and _armed():
                Path(os.environ["AUTOPRUNE_KILL_MARKER"]).write_text(str(current["number"]))
                resume = Path(os.environ.get("AUTOPRUNE_RESUME_MARKER", "/nonexistent/marker"))
                while moment == "hold-mid-trial" or not resume.exists():  # held, or paused
                    time.sleep(0.05)
                return build(self, policy)
            if current.get("number") == number and _armed():
                _die()
            return build(self, policy)

        objective.Objective.__call__ = remember
        scoring.CandidateScorer.build = build_then_die
    elif moment == "hold-sensitivity":
        import autoprune.sensitivity._analysis as analysis

        _hold_before(analysis, "unit_curve", "sensitivity", calls=2)
    elif moment == "hold-final":
        import autoprune.final._finalize as finalize

        _hold_before(finalize, "publish", "final")
    elif moment == "hold-report":
        import autoprune.report._build as build

        _hold_before(build, "to_html", "report")
    elif moment == "pause-after-save":
        import time

        import autoprune.final._publish as finalize

        save = finalize.save_pruned

        def save_then_pause(*args, **kwargs):
            out = save(*args, **kwargs)
            Path(os.environ["AUTOPRUNE_KILL_MARKER"]).write_text("paused")
            while not Path(os.environ["AUTOPRUNE_RESUME_MARKER"]).exists():
                time.sleep(0.05)
            return out

        finalize.save_pruned = save_then_pause
    else:
        raise SystemExit(f"unknown moment {moment!r}")


if __name__ == "__main__":
    moment, number, separator, *argv = sys.argv[1:]
    assert separator == "--", "usage: kill_at.py MOMENT TRIAL -- COMMAND ARGS"
    install(moment, int(number))
    from autoprune.cli import main

    raise SystemExit(main(argv))
