"""One trial: sample, prune, check the budget, screen, and fine-tune only what can matter.

1. :func:`suggest` a candidate fitted to the budget;
2. prune a copy of the dense model (BatchNorm recalibrated) and measure its
   exact costs; the budgets enter Optuna as constraints (``trial.set_constraint``,
   feasible when <= 0). A latency budget's cost is the latency model's estimate;
   the report measures the candidates it shows;
3. a candidate over budget stops here (its screening metric is the pruned
   model's): no fine-tuning is spent on it. A feasible one gets the short
   fine-tune the space's ``screening.epochs`` asks for, if any, before screening;
4. a feasible candidate is *promoted* to the trial fine-tune when it can
   change the front: its optimistic outcome (the best fine-tuned metric of any
   trial that screened no better) is not already reached by a fine-tuned trial
   at most as costly (seeds and the first ``screening.startup`` trials are
   always promoted);
5. the trial reports (validation metric, cost as a fraction of the primary
   budget's limit) and records everything it measured as user attributes.

Example:
    >>> import optuna
    >>> from autoprune.search._context import example_context
    >>> study = optuna.create_study(directions=["maximize", "minimize"])
    >>> trial = study.ask()
    >>> metric, cost = Objective(example_context())(trial)
    >>> 0 < metric <= 1, trial.user_attrs["fidelity"] in ("finetuned", "screened", "rejected")
    (True, True)
"""

from __future__ import annotations

import math
import time

from autoprune.budgets import measure_costs
from autoprune.errors import TrainingDiverged, TrialFailed
from autoprune.search._candidate import Candidate, suggest
from autoprune.search._context import SearchContext
from autoprune.training import evaluate, prune_and_finetune

SCREEN_SLACK = 0.01  # screening metrics this close count as "no better"


class Objective:
    """Callable evaluating one Optuna trial (see the module docstring)."""

    def __init__(self, ctx: SearchContext) -> None:
        self.ctx = ctx

    def __call__(self, trial) -> tuple[float, float]:
        start = time.perf_counter()
        ctx = self.ctx
        candidate = suggest(trial, ctx)
        trial.set_user_attr("policy", candidate.policy.to_dict())
        trial.set_user_attr("estimates", candidate.estimates)
        trial.set_user_attr("repaired", candidate.repaired)
        trial.set_user_attr("fits_estimate", candidate.fits)
        try:
            # pruned only: the exact costs decide feasibility before any fine-tuning is spent
            screened = prune_and_finetune(ctx.fresh_dense(), candidate.policy, ctx.task, epochs=0)
            latency = ctx.latency_of if ctx.latency_model is not None else None
            costs = measure_costs(
                screened.model,
                ctx.example_input,
                latency=latency,
                scope=ctx.scope,
                history=screened.history,
            )
            feasible = True
            for budget in ctx.budgets:
                excess = costs.of(budget.kind) / ctx.limits[budget.kind] - 1.0
                trial.set_constraint(budget.kind, excess)
                feasible &= excess <= 0
            if (
                feasible and ctx.space.screening.epochs > 0
            ):  # a short fine-tune, for feasible candidates only
                screened = prune_and_finetune(
                    ctx.fresh_dense(), candidate.policy, ctx.task, epochs=ctx.space.screening.epochs
                )
            screen = evaluate(screened.model, ctx.task.val_data, ctx.task)
        except TrainingDiverged as exc:
            raise TrialFailed(f"during screening: {exc}") from exc
        if not math.isfinite(screen.metric) or not math.isfinite(screen.loss):
            raise TrialFailed(f"the pruned model gives a non-finite loss ({screen.loss}) or metric")
        cost = costs.of(ctx.primary.kind) / ctx.limits[ctx.primary.kind]
        trial.set_user_attr("costs", costs.as_dict())
        trial.set_user_attr("cost", cost)
        trial.set_user_attr("screen_metric", screen.metric)
        trial.set_user_attr("layers", _achieved(screened.layers))
        metric, fidelity = screen.metric, "rejected"
        if feasible:
            fidelity = "screened"
            if self._promote(trial, screen.metric, cost):
                metric = self._finetune(candidate)
                fidelity = "finetuned"
        trial.set_user_attr("fidelity", fidelity)
        trial.set_user_attr("seconds", round(time.perf_counter() - start, 2))
        return metric, cost

    def _finetune(self, candidate: Candidate) -> float:
        ctx = self.ctx
        try:
            outcome = prune_and_finetune(ctx.fresh_dense(), candidate.policy, ctx.task)
        except TrainingDiverged as exc:
            raise TrialFailed(f"during fine-tuning: {exc}") from exc
        result = evaluate(outcome.model, ctx.task.val_data, ctx.task)
        if not math.isfinite(result.metric) or not math.isfinite(result.loss):
            raise TrialFailed(f"fine-tuning gave a non-finite loss ({result.loss})")
        return result.metric

    def _promote(self, trial, screen_metric: float, cost: float) -> bool:
        """Fine-tune only a candidate that could still change the front.

        Its optimistic outcome is the best fine-tuned metric ever reached by a
        candidate that screened no better (plus ``screening.margin``). If a fine-tuned
        trial at most as costly already reaches that, the candidate cannot
        improve the front and keeps its screening result.
        """
        if trial.user_attrs.get("seed"):
            return True
        from optuna.trial import TrialState

        done = [
            t
            for t in trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if t.user_attrs.get("fidelity") in ("screened", "finetuned")
        ]
        if len(done) < self.ctx.space.screening.startup:
            return True
        tuned = [t for t in done if t.user_attrs.get("fidelity") == "finetuned"]
        comparable = [
            t.values[0]
            for t in tuned
            if t.user_attrs["screen_metric"] <= screen_metric + SCREEN_SLACK
        ]
        if not comparable:
            return True  # it screens better than anything fine-tuned so far
        optimistic = max(comparable) + self.ctx.space.screening.margin
        return not any(t.values[0] >= optimistic and t.values[1] <= cost for t in tuned)


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
