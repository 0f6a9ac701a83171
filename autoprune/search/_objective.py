"""One trial: a candidate scored without training, or one of the best candidates recovered.

A *candidate* trial:

1. :func:`~._candidate.suggest` fits the sampler's proposal (or a queued
   heuristic) to its level of the budget;
2. the :class:`~._scoring.CandidateScorer` prunes the working copy of the dense
   model (structured units zeroed, traced once), re-estimates BatchNorm and
   measures the distance of its outputs from the dense model's on the first
   ``fitness.first_look`` calibration items; the budgets enter Optuna as
   constraints (``trial.set_constraint``, feasible when <= 0);
3. a feasible candidate whose first look is among the best ``confirm_share`` of
   its level so far (and every heuristic) is *confirmed*: its distance on all
   ``fitness.confirm`` items and its one-shot validation metric are measured;
   under a latency budget it is also pruned for real and timed: the timing
   decides its feasibility and corrects the latency model that fits the
   candidates after it (:mod:`._timing`).

A *recovery* trial (queued for the best confirmed candidates once the others
are done) prunes the dense model physically as its candidate's policy says,
trains it back with the space's recovery (distillation from the dense model,
:func:`~autoprune.training.recover`) and measures its validation metric and
exact costs (latency: its candidate's timing): the pick is made among recovered
candidates.

The trial reports ``(score, cost / limit)``: the score is the fitness
(minus the distance) of a candidate, the validation metric of a recovered one;
everything measured is stored with the trial.

Example:
    >>> import optuna
    >>> from autoprune.search._context import example_context
    >>> study = optuna.create_study(directions=["maximize", "minimize"])
    >>> trial = study.ask()
    >>> fitness, cost = Objective(example_context())(trial)
    >>> fitness <= 0, trial.user_attrs["fidelity"] in ("scored", "confirmed", "rejected")
    (True, True)
"""

from __future__ import annotations

import math
import time
from dataclasses import replace

from optuna.trial import TrialState

from autoprune.budgets import measure_costs
from autoprune.errors import TrainingDiverged, TrialFailed
from autoprune.policy import Policy
from autoprune.search._candidate import Candidate, suggest
from autoprune.search._context import SearchContext
from autoprune.search._evolution import confirmed
from autoprune.search._timing import latency_correction, timed_policy
from autoprune.training import evaluate, finetune_policy, pin_ratios

REJECTED = -1e30  # the score of a candidate that cannot fit its level at all
MIN_LOOKS = 5  # a level's first candidates are all confirmed


class Objective:
    """Callable evaluating one Optuna trial (see the module docstring)."""

    def __init__(self, ctx: SearchContext) -> None:
        self.ctx = ctx
        self._scorer = None

    @property
    def scorer(self):
        if self._scorer is None:
            from autoprune.search._scoring import CandidateScorer

            self._scorer = CandidateScorer(self.ctx)
        return self._scorer

    def __call__(self, trial) -> tuple[float, float]:
        start = time.perf_counter()
        if "recover_of" in trial.user_attrs:
            values = self._recover(trial)
        else:
            values = self._score(trial)
        trial.set_user_attr("seconds", round(time.perf_counter() - start, 3))
        return values

    # ------------------------------------------------------------------ candidates

    def _score(self, trial) -> tuple[float, float]:
        ctx = self.ctx
        trial.set_user_attr("provenance", _provenance(trial))
        if ctx.latency_model is not None:  # fitted to what the candidates timed so far measured
            ctx.latency_correction = latency_correction(trial.study)
            trial.set_user_attr("latency_correction", ctx.latency_correction)
        candidate = suggest(trial, ctx)
        self._record(trial, candidate)
        if not candidate.fits:
            cost = max(candidate.estimates[k] / v for k, v in ctx.limits.items())
            self._constraints(trial, candidate.estimates)
            trial.set_user_attr("fidelity", "rejected")
            return REJECTED, cost
        built = self.scorer.build(candidate.policy)
        checked = dict(built.estimates)  # what the constraints check
        trial.set_user_attr("allocation", {u: round(a, 6) for u, a in built.reached.items()})
        trial.set_user_attr("costs", built.costs)
        fitness = -built.distance(items=ctx.space.fitness.first_look)
        _check_finite(fitness, "the pruned model's outputs")
        trial.set_user_attr("first_look", fitness)
        fidelity = "scored"
        if ctx.meets(built.estimates) and (
            candidate.info.get("seed") or self._promising(trial, fitness)
        ):
            fitness = -built.distance(items=ctx.space.fitness.confirm)
            _check_finite(fitness, "the pruned model's outputs")
            metric = self.scorer.validation_metric(built, items=ctx.space.fitness.val_items)
            trial.set_user_attr("val_metric", metric)
            fidelity = "confirmed"
            if ctx.latency_model is not None:
                checked["latency"] = self._time(trial, candidate, built)
        self._constraints(trial, checked)
        cost = checked[ctx.primary.kind] / ctx.limits[ctx.primary.kind]
        trial.set_user_attr("cost", cost)
        trial.set_user_attr("fitness", fitness)
        trial.set_user_attr("fidelity", fidelity)
        return fitness, cost

    def _time(self, trial, candidate: Candidate, built) -> float:
        """A confirmed candidate under a latency budget, pruned for real and timed: its measured
        latency (ms, returned) is what its feasibility is checked by, against the same aim as an
        estimate, and it joins the others in the latency model's correction."""
        ctx = self.ctx
        measured, modelled = timed_policy(ctx, ctx.reached_policy(candidate.policy, built.reached))
        trial.set_user_attr("latency_measured_ms", measured)
        trial.set_user_attr("latency_modelled_ms", modelled)
        trial.set_user_attr("costs", {**built.costs, "latency_ms": measured})
        return measured

    def _record(self, trial, candidate: Candidate) -> None:
        candidate.info["seed"] = bool(trial.user_attrs.get("seed"))
        trial.set_user_attr("policy", candidate.policy.to_dict())
        trial.set_user_attr("level", candidate.level)
        trial.set_user_attr("granularity", candidate.granularity)
        trial.set_user_attr("criterion", candidate.criterion)
        trial.set_user_attr("scope", candidate.scope)
        trial.set_user_attr("blocks", list(candidate.policy.blocks))
        if candidate.policy.inputs is not None:
            trial.set_user_attr("inputs", list(candidate.policy.inputs))
        trial.set_user_attr("estimates", candidate.estimates)
        trial.set_user_attr("repaired", candidate.repaired)

    def _constraints(self, trial, costs: dict[str, float]) -> bool:
        feasible = True
        for budget in self.ctx.budgets:
            excess = costs[budget.kind] / self.ctx.limits[budget.kind] - 1.0
            trial.set_constraint(budget.kind, min(excess, 1e12))
            feasible &= excess <= 0
        trial.set_user_attr("feasible", bool(feasible))
        return feasible

    def _promising(self, trial, fitness: float) -> bool:
        """Is this first look among the best ``confirm_share`` of its level's first looks so far?"""
        level = trial.user_attrs["level"]
        looks = sorted(
            (
                t.user_attrs["first_look"]
                for t in trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if t.user_attrs.get("level") == level and "first_look" in t.user_attrs
            ),
            reverse=True,
        )
        if len(looks) < MIN_LOOKS:
            return True
        best = looks[: max(1, math.ceil(self.ctx.space.fitness.confirm_share * len(looks)))]
        return fitness >= best[-1]

    # ------------------------------------------------------------------ recovery

    def _recover(self, trial) -> tuple[float, float]:
        ctx = self.ctx
        source = trial.study.get_trials(deepcopy=False)[int(trial.user_attrs["recover_of"])]
        policy = Policy.from_dict(source.user_attrs["policy"])
        if "schedule" in trial.user_attrs:
            schedule = ctx.schedule(trial.user_attrs["schedule"])
            if schedule.name != policy.schedule.name:
                # a global ranking of units of unequal sizes, re-ranked at every pruning event of
                # another schedule, ends at another mix and another cost: recover the structure
                # the candidate reached (under its own schedule, the final step pins it)
                policy = pin_ratios(policy, source.user_attrs["allocation"])
            policy = replace(policy, schedule=schedule)
        for key in ("level", "granularity", "criterion", "provenance", "blocks", "inputs"):
            if key in source.user_attrs:
                trial.set_user_attr(key, source.user_attrs[key])
        trial.set_user_attr("scope", policy.scope)
        trial.set_user_attr("policy", policy.to_dict())
        try:
            outcome = finetune_policy(ctx.fresh_dense(), policy, ctx.task, dense=ctx.dense)
        except TrainingDiverged as exc:
            raise TrialFailed(f"during recovery: {exc}") from exc
        model = outcome.model.eval()
        latency = None
        if ctx.latency_model is not None:  # its candidate's timing: the widths are the same
            latency = _timed(source, ctx)
        costs = measure_costs(
            model, ctx.example_input, latency=latency, scope=ctx.scope, history=outcome.history
        )
        feasible = self._constraints(trial, {b.kind: costs.of(b.kind) for b in ctx.budgets})
        result = evaluate(model, ctx.task.val_data, ctx.task)
        _check_finite(result.metric, "recovery")
        cost = costs.of(ctx.primary.kind) / ctx.limits[ctx.primary.kind]
        trial.set_user_attr("costs", costs.as_dict())
        trial.set_user_attr("cost", cost)
        trial.set_user_attr("layers", _achieved(outcome.layers))
        trial.set_user_attr("val_metric", result.metric)
        trial.set_user_attr("fidelity", "recovered" if feasible else "rejected")
        return result.metric, cost


def _timed(source, ctx):
    """The latency of a recovered model: its candidate's timing (one timing decides: timed
    again, a model moves by a few percent), else the corrected latency model's estimate."""
    measured = source.user_attrs.get("latency_measured_ms")
    return ctx.latency_of if measured is None else (lambda model: measured)


def _check_finite(value: float, what: str) -> None:
    if not math.isfinite(value):
        raise TrialFailed(f"{what} gave a non-finite result ({value})")


def _provenance(trial) -> str:
    """``seed`` (a queued heuristic), ``sampler`` (a child of a confirmed candidate) or ``startup``."""
    if trial.user_attrs.get("seed"):
        return "seed"
    started = trial.datetime_start
    parents = [
        t
        for t in confirmed(trial.study)
        if t.datetime_complete is not None and (started is None or t.datetime_complete <= started)
    ]
    return "sampler" if parents else "startup"


def _achieved(rows: list[dict]) -> dict[str, dict]:
    """Compact per-layer record: sparsity, channel ratio, parameters kept."""
    return {
        r["layer"]: {
            "sparsity": round(r["sparsity"], 5),
            "channel_ratio": round(r["channel_ratio"], 5),
            "nonzero_params": r["nonzero_params"],
        }
        for r in rows
    }
