"""Pruning schedules: pure functions of the step.

A schedule answers two questions: at which fine-tuning steps does pruning
happen (:meth:`plan`, a list of ``(step, progress)`` with progress in (0, 1]),
and how much of a layer's final amount is pruned at a given progress
(:meth:`amount`). All three reach exactly the final amount at progress 1.

* ``one-shot``: everything at step 0, then fine-tuning.
* ``iterative``: ``rounds`` rounds of prune-then-fine-tune; the kept fraction
  shrinks geometrically, ``1 - (1 - s)^(r/rounds)`` after round r.
* ``gradual``: Zhu & Gupta's cubic schedule ``s * (1 - (1 - p)^3)``, the masks
  updated every ``every`` steps until ``end`` of the fine-tuning run.
* ``regularised``: train-time pruning: until ``end`` of the run every step is
  followed by a sparsity-inducing shrink (:mod:`autoprune.prune._shrink`:
  group lasso on units, L1 on weights, ``strength``); then everything is pruned
  at once and the rest of the run fine-tunes.

Example:
    >>> it = Iterative(rounds=2)
    >>> it.plan(100)
    [(0, 0.5), (50, 1.0)]
    >>> round(it.amount(0.75, 0.5), 4), it.amount(0.75, 1.0)
    (0.5, 0.75)
    >>> Gradual(every=10, end=0.5).plan(100)[-1]
    (50, 1.0)
    >>> Regularised(end=0.5).plan(100), Regularised(end=0.5).regularising(100)
    ([(50, 1.0)], 50)
"""

from __future__ import annotations

from dataclasses import dataclass


class Schedule:
    """What every schedule answers; only ``regularised`` shrinks before it prunes."""

    def regularising(self, total_steps: int) -> int:
        """Steps (from the first) followed by a sparsity-inducing shrink."""
        return 0


@dataclass(frozen=True)
class OneShot(Schedule):
    name = "one-shot"

    def plan(self, total_steps: int) -> list[tuple[int, float]]:
        return [(0, 1.0)]

    def amount(self, final: float, progress: float) -> float:
        return final if progress > 0 else 0.0


@dataclass(frozen=True)
class Iterative(Schedule):
    rounds: int = 3
    name = "iterative"

    def plan(self, total_steps: int) -> list[tuple[int, float]]:
        return [(r * total_steps // self.rounds, (r + 1) / self.rounds) for r in range(self.rounds)]

    def amount(self, final: float, progress: float) -> float:
        if progress >= 1.0:
            return final
        return 1.0 - (1.0 - final) ** progress


@dataclass(frozen=True)
class Gradual(Schedule):
    every: int = 20
    end: float = 0.75
    name = "gradual"

    def plan(self, total_steps: int) -> list[tuple[int, float]]:
        end_step = int(self.end * total_steps)
        if end_step <= 0:
            return [(0, 1.0)]
        steps = list(range(0, end_step, self.every)) + [end_step]
        return [(t, t / end_step) for t in steps if t > 0] if len(steps) > 1 else [(0, 1.0)]

    def amount(self, final: float, progress: float) -> float:
        if progress >= 1.0:
            return final
        return final * (1.0 - (1.0 - progress) ** 3)


@dataclass(frozen=True)
class Regularised(Schedule):
    end: float = 0.75
    strength: float = 0.2
    name = "regularised"

    def regularising(self, total_steps: int) -> int:
        """Steps (from the first) followed by a shrink; the pruning event comes after them."""
        return int(self.end * total_steps) if self.strength > 0 else 0

    def plan(self, total_steps: int) -> list[tuple[int, float]]:
        return [(int(self.end * total_steps), 1.0)]

    def amount(self, final: float, progress: float) -> float:
        return final if progress > 0 else 0.0


def make_schedule(spec) -> Schedule:
    """The schedule of a :class:`autoprune.policy.ScheduleSpec`."""
    if spec.name == "regularised":
        return Regularised(end=spec.end, strength=spec.strength)
    if spec.name == "iterative":
        return Iterative(rounds=spec.rounds)
    if spec.name == "gradual":
        return Gradual(every=spec.every, end=spec.end)
    return OneShot()


__all__ = ["Gradual", "Iterative", "OneShot", "Regularised", "Schedule", "make_schedule"]
