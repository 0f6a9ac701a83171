"""Budget levels a granularity cannot reach are not proposed for it; tiny budgets stay searchable."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import CategoricalDistribution

from autoprune.search import search
from autoprune.search._bounds import reached_levels
from autoprune.search._evolution import EvolutionSampler, EvolutionSpace
from autoprune.search._space import SearchSpace, load_space

BOUNDS = {
    "unstructured": {"fc1": (0.0, 0.99), "fc2": (0.0, 0.99)},
    "structured": {"fc1": (0.0, 0.9), "fc2": (0.0, 0.9)},
}


def _space(**fields) -> dict:
    return SearchSpace.from_dict({**load_space("quick").to_dict(), **fields}).to_dict()


def _sample(space: EvolutionSpace, study, slot: int) -> dict:
    return EvolutionSampler(space, seed=slot, slot=slot).sample_relative(study, None, {})


def _confirmed_parent(granularity: str, level: float) -> optuna.trial.FrozenTrial:
    attrs = dict(
        fidelity="confirmed",
        feasible=True,
        level=level,
        fitness=-1.0,
        granularity=granularity,
        criterion="l1",
        allocation={"fc1": 0.5, "fc2": 0.5},
    )
    return optuna.trial.create_trial(
        params={"granularity": granularity},
        distributions={"granularity": CategoricalDistribution(["unstructured", "structured"])},
        values=[1.0],
        user_attrs=attrs,
    )


def test_a_level_out_of_a_granularitys_reach_is_proposed_only_for_the_others():
    space = EvolutionSpace(
        levels=(1.0, 0.5),
        granularities=("unstructured", "structured"),
        criteria=("l1",),
        bounds=BOUNDS,
        reach={"unstructured": (1.0, 0.5), "structured": (1.0,)},
    )
    study = optuna.create_study()
    study.add_trial(_confirmed_parent("structured", 1.0))
    at_half = [p for p in (_sample(space, study, s) for s in range(40)) if p["level"] == 0.5]
    assert at_half  # slots 3 and 4 of every 5 evolve the other level
    # no structured parent is mutated for 0.5: its children would all miss it
    assert {p["granularity"] for p in at_half} == {"unstructured"}
    at_budget = [p for p in (_sample(space, study, s) for s in range(40)) if p["level"] == 1.0]
    assert {p["granularity"] for p in at_budget} == {"structured"}  # children of the parent


def test_a_level_no_granularity_reaches_is_never_proposed():
    space = EvolutionSpace(
        levels=(1.0, 0.75, 0.5),
        granularities=("structured",),
        criteria=("l1",),
        bounds={"structured": BOUNDS["structured"]},
        reach={"structured": (1.0, 0.75)},
    )
    levels = {_sample(space, optuna.create_study(), s)["level"] for s in range(40)}
    assert levels == {1.0, 0.75}
    everywhere = EvolutionSpace(
        levels=(1.0, 0.75, 0.5), granularities=("structured",), criteria=("l1",), bounds=BOUNDS
    )
    assert {_sample(everywhere, optuna.create_study(), s)["level"] for s in range(40)} == {
        1.0,
        0.75,
        0.5,
    }


def test_reached_levels_are_those_the_bounds_can_meet(tmp_path):
    # digits-mlp with at most half of each group's neurons removed cannot go below ~30%
    # of its parameters: the budget itself (40%) is reachable, half of it is not
    space = _space(granularities=["structured"], channel_ratio={"high": 0.5}, levels=[1.0, 0.5])
    result = search(
        "digits-mlp", "params=0.4", space=space, n_trials=8, out=tmp_path / "s", progress=False
    )
    ctx = result.context
    assert reached_levels(ctx) == {"structured": (1.0,)}
    trials = result.trials
    candidates = trials[trials.recover_of.isna()]
    assert len(candidates) == 8
    assert set(candidates.level) == {1.0}  # no trial spent on a level it cannot meet
    assert not (candidates.fidelity == "rejected").any()


def test_a_budget_of_two_percent_keeps_unstructured_candidates(tmp_path):
    # digits-mlp's biases are 1.2% of its parameters: keeping 1% of every layer's weights
    # misses a 2% budget; the default space allows 99.9%, so the heuristics still fit it
    assert SearchSpace().sparsity.high == pytest.approx(0.999)
    space = _space(granularities=["unstructured"], scopes=["local", "global"])
    result = search(
        "digits-mlp", "params=0.02", space=space, n_trials=6, out=tmp_path / "s", progress=False
    )
    trials = result.trials
    seeds = set(trials.seed.dropna())
    assert {"uniform:unstructured@1", "global:unstructured@1"} <= seeds
    feasible = trials[(trials.recover_of.isna()) & (trials.feasible == True)]  # noqa: E712
    assert len(feasible) >= 2
    assert (feasible.params <= 0.02 * result.context.dense_costs.params + 1e-9).all()
