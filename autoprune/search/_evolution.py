"""The sampler: budget-exact mutations of the best confirmed candidates (an evolutionary search).

Each new trial is assigned a budget *level* (a share of the budget) by its
slot, then gets a child of one of the best confirmed candidates at that level
(a parent drawn from the best ``evolution.parents``; the best one at any level
before that level has its own). A child trades amounts between units: a few
pairs of units, one pruned more and one less by the same step, as EvoPress's
level switches do; the objective then fits the child to its level of the budget
exactly (:mod:`autoprune.search._candidate`), so every candidate spends the
budget it was made for and candidates differ only in how they spread it. Now and
then a child ranks by another criterion of the space. With depth in the space,
a child also removes or restores one block now and then (``depth_flip``); the
fit to the budget then moves the widths, so depth and width are chosen jointly.
With input features in the space, a child keeps a few more or fewer of them
now and then (``INPUT_MOVE``), the widths again fitted around them.
Before any candidate is confirmed, proposals are uniform draws within the bounds.

The heuristic policies (uniform, global magnitude, LAMP, ERK, OWL) are queued
as the first trials with fixed parameters: the evolution starts from the best of
them, so it can only improve on them.

Example:
    >>> import optuna
    >>> space = EvolutionSpace(levels=(1.0, 0.5), granularities=("unstructured",),
    ...                        criteria=("l1",), bounds={"unstructured": {"fc1": (0.0, 0.9)}})
    >>> [level_of_slot(space.levels, slot) for slot in range(8)]
    [1.0, 1.0, 1.0, 0.5, 0.5, 1.0, 1.0, 1.0]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.trial import TrialState

from autoprune.search._bounds import reached_levels
from autoprune.search._space_fields import EvolutionSettings

UNIFORM_DEPTH = 0.25  # the chance a start-up proposal removes a given block
INPUT_MOVE = 0.3  # with input features in the space: the chance a child keeps more or fewer


@dataclass(frozen=True)
class EvolutionSpace:
    """What the sampler may propose: levels, granularities, criteria, and each unit's bounds."""

    levels: tuple[float, ...]
    granularities: tuple[str, ...]
    criteria: tuple[str, ...]
    bounds: dict[str, dict[str, tuple[float, float]]]
    settings: EvolutionSettings = EvolutionSettings()
    blocks: tuple[str, ...] = ()  # removable whole (depth in the space): ``depth:<block>`` 0 or 1
    features: int = 0  # input features (``inputs`` in the space): ``inputs`` kept, 1 .. features
    # granularity -> the levels it can reach within its bounds (None: every level)
    reach: dict[str, tuple[float, ...]] | None = None

    def reaches(self, granularity: str, level: float) -> bool:
        """Whether candidates of ``granularity`` can meet ``level`` at all (within their bounds)."""
        return self.reach is None or level in self.reach.get(granularity, self.levels)

    def reached(self) -> tuple[float, ...]:
        """The levels some granularity can reach, in the space's order (the budget itself first)."""
        return tuple(v for v in self.levels if any(self.reaches(g, v) for g in self.granularities))

    def distributions(self) -> dict[str, optuna.distributions.BaseDistribution]:
        out: dict[str, optuna.distributions.BaseDistribution] = {
            "level": CategoricalDistribution(list(self.levels)),
            "granularity": CategoricalDistribution(list(self.granularities)),
            "criterion": CategoricalDistribution(list(self.criteria)),
        }
        for granularity, units in self.bounds.items():
            for unit, (low, high) in units.items():
                if high - low >= 1e-9:
                    out[f"{granularity}:{unit}"] = FloatDistribution(low, high)
        for block in self.blocks:
            out[f"depth:{block}"] = CategoricalDistribution([0, 1])
        if self.features:
            out["inputs"] = IntDistribution(1, self.features)
        return out


def level_of_slot(levels: tuple[float, ...], slot: int) -> float:
    """The budget level slot ``slot`` evolves for: the budget itself in 3 of every 5 slots."""
    if len(levels) == 1:
        return levels[0]
    position = slot % 5
    if position < 3:
        return levels[0]
    others = levels[1:]
    return others[(2 * (slot // 5) + position - 3) % len(others)]


def confirmed(study, level: float | None = None) -> list:
    """Feasible confirmed candidates (at ``level`` when given), best fitness first."""
    trials = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.user_attrs.get("fidelity") == "confirmed"
        and t.user_attrs.get("feasible")
        and (level is None or t.user_attrs.get("level") == level)
    ]
    return sorted(trials, key=lambda t: (-t.user_attrs["fitness"], t.number))


class EvolutionSampler(BaseSampler):
    """One trial's sampler: a child of a good confirmed candidate, from the slot's own stream."""

    def __init__(self, space: EvolutionSpace, *, seed: int, slot: int) -> None:
        self.space = space
        self.slot = slot
        self.rng = np.random.default_rng(seed)
        self.fallback = RandomSampler(seed=seed)

    def infer_relative_search_space(self, study, trial) -> dict:
        return self.space.distributions()

    def sample_relative(self, study, trial, search_space) -> dict:
        level = level_of_slot(self.space.reached() or self.space.levels, self.slot)
        parents = confirmed(study, level) or [
            p for p in confirmed(study) if self.space.reaches(p.user_attrs["granularity"], level)
        ]
        if not parents:
            return {"level": level, **self._uniform(level)}
        pool = parents[: self.space.settings.parents]
        parent = pool[int(self.rng.integers(len(pool)))] if self.rng.random() < 0.5 else pool[0]
        return {"level": level, **self._child(parent)}

    def _uniform(self, level: float) -> dict:
        choices = [g for g in self.space.granularities if self.space.reaches(g, level)]
        choices = choices or list(self.space.granularities)
        granularity = choices[int(self.rng.integers(len(choices)))]
        criterion = self.space.criteria[int(self.rng.integers(len(self.space.criteria)))]
        amounts = {
            f"{granularity}:{unit}": float(self.rng.uniform(low, high))
            for unit, (low, high) in self.space.bounds.get(granularity, {}).items()
            if high - low >= 1e-9
        }
        depth = {f"depth:{b}": int(self.rng.random() < UNIFORM_DEPTH) for b in self.space.blocks}
        features = self.space.features
        inputs = {"inputs": int(self.rng.integers(1, features + 1))} if features else {}
        return {"granularity": granularity, "criterion": criterion, **amounts, **depth, **inputs}

    def _inputs(self, parent_inputs) -> dict[str, int]:
        """The parent's number of kept input features, a few more or fewer now and then."""
        features = self.space.features
        if not features:
            return {}
        kept = features if parent_inputs is None else len(parent_inputs)
        if self.rng.random() < INPUT_MOVE:
            step = int(self.rng.integers(1, max(1, features // 8) + 1))
            kept += step if self.rng.random() < 0.5 else -step
        return {"inputs": min(features, max(1, kept))}

    def _depth(self, parent_blocks) -> dict[str, int]:
        """The parent's removed blocks, one of them restored or another removed now and then."""
        removed = {b: int(b in parent_blocks) for b in self.space.blocks}
        if removed and self.rng.random() < self.space.settings.depth_flip:
            block = self.space.blocks[int(self.rng.integers(len(self.space.blocks)))]
            removed[block] = 1 - removed[block]
        return {f"depth:{b}": v for b, v in removed.items()}

    def _child(self, parent) -> dict:
        attrs = parent.user_attrs
        granularity, criterion = attrs["granularity"], attrs["criterion"]
        bounds = self.space.bounds.get(granularity, {})
        amounts = {u: float(attrs["allocation"].get(u, bounds[u][0])) for u in bounds}
        movable = [u for u, (low, high) in bounds.items() if high - low >= 1e-9]
        settings = self.space.settings
        if len(movable) >= 2:
            for _ in range(int(self.rng.integers(settings.moves[0], settings.moves[1] + 1))):
                more, less = self.rng.choice(movable, size=2, replace=False)
                step = float(self.rng.uniform(*settings.step))
                amounts[more] = min(bounds[more][1], amounts[more] + step)
                amounts[less] = max(bounds[less][0], amounts[less] - step)
        if len(self.space.criteria) > 1 and self.rng.random() < settings.criterion_switch:
            others = [c for c in self.space.criteria if c != criterion]
            criterion = others[int(self.rng.integers(len(others)))]
        return {
            "granularity": granularity,
            "criterion": criterion,
            **{f"{granularity}:{u}": amounts[u] for u in movable},
            **self._depth(attrs.get("blocks", ())),
            **self._inputs(attrs.get("policy", {}).get("inputs")),
        }

    def sample_independent(self, study, trial, param_name, param_distribution):
        if param_name == "scope":
            return "local"  # children are per-unit allocations; the global ones are heuristics
        return self.fallback.sample_independent(study, trial, param_name, param_distribution)


def evolution_space(ctx) -> EvolutionSpace:
    """The sampler's view of a search context: its levels, granularities, criteria and bounds."""
    return EvolutionSpace(
        levels=tuple(ctx.space.levels),
        granularities=tuple(ctx.granularities),
        criteria=tuple(ctx.space.criteria),
        bounds={g: dict(b) for g, b in ctx.bounds.items()},
        settings=ctx.space.evolution,
        blocks=tuple(ctx.blocks),
        features=len(ctx.features),
        reach=reached_levels(ctx),
    )


def make_sampler(space: EvolutionSpace, seed: int, slot: int) -> EvolutionSampler:
    """The sampler of the trial in ``slot``: its own stream (see :func:`~._worker.sampler_seed`)."""
    from autoprune.search._worker import sampler_seed

    return EvolutionSampler(space, seed=sampler_seed(seed, slot), slot=slot)
