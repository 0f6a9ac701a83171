"""The final model of a search, step by step (see :mod:`autoprune.final`)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from autoprune._constraints import Interval, Options
from autoprune._validation import validate_params
from autoprune.budgets import Budget
from autoprune.final._choose import (
    front_of_run,
    front_policies,
    latency_budget,
    measure_front_latency,
    meeting_latency,
)
from autoprune.final._finetune import Shapes, choose_tuned, finetune_candidates
from autoprune.final._publish import publish, save_final, staging_dir
from autoprune.final._rules import RULES, shortlist
from autoprune.final._summary import FinalSummary, FrontLatency
from autoprune.final._tighten import tighten_front
from autoprune.final._verify import budget_checks, measure_saved
from autoprune.training import evaluate


@dataclass(frozen=True)
class FinalOptions:
    """How :func:`final_model` fine-tunes, chooses and records the final model.

    ``label`` (default ``rule``) is the rule recorded in the summary and the policy
    file; ``extra_budgets`` are checked on the saved model besides the run's own.

    Example:
        >>> FinalOptions().recorded_rule, FinalOptions(rule="knee", label="trial").recorded_rule
        ('best', 'trial')
    """

    rule: str = "best"
    tolerance: float = 0.005
    epochs: float | None = None
    progress: bool = True
    label: str | None = None
    extra_budgets: tuple[Budget, ...] = ()

    @property
    def recorded_rule(self) -> str:
        """The rule the summary and the policy file name."""
        return self.label or self.rule


def _open(result_or_run_dir):
    from autoprune.search import SearchResult, open_run

    if isinstance(result_or_run_dir, SearchResult):
        return result_or_run_dir
    return open_run(result_or_run_dir)


@validate_params(
    {"rule": Options(RULES), "top": Interval(int, 1, None), "tolerance": Interval(float, 0, 1)}
)
def finalize(
    result_or_run_dir,
    *,
    rule: str = "best",
    top: int = 1,
    tolerance: float = 0.005,
    epochs: float | None = None,
    progress: bool = True,
) -> FinalSummary:
    """Pick, fine-tune fully, test once, save and re-measure the final model of a search.

    ``result_or_run_dir`` is a :class:`~autoprune.search.SearchResult` or its run
    directory; ``epochs`` defaults to the search space's ``final_epochs``. The
    summary is also written to ``final/final.json``.
    """
    result = _open(result_or_run_dir)
    run_dir, ctx = Path(result.run_dir), result.context
    front = front_of_run(run_dir, result.study)
    shapes = Shapes(ctx, front_policies(front))
    front_latency, budget = None, latency_budget(ctx.setup.budgets)
    if budget is not None:
        # the search timed its candidates once: measure the front again and pick among what meets
        # the budget, its most accurate candidate narrowed to fit when it measures just over
        models = {number: shapes(number).model for number in shapes.policies}
        front_latency = measure_front_latency(ctx, front, models, budget)
        front_latency = tighten_front(ctx, front, shapes, front_latency, budget)
    candidates = shortlist(
        meeting_latency(front, front_latency), rule, top=top, tolerance=tolerance
    )
    staging = staging_dir(run_dir)
    summary = final_model(
        ctx,
        candidates,
        shapes,
        staging,
        FinalOptions(rule=rule, tolerance=tolerance, epochs=epochs, progress=progress),
        front_latency=front_latency,
    )
    return publish(run_dir, staging, summary)


def final_model(
    ctx,
    candidates: pd.DataFrame,
    shapes: Shapes,
    staging: Path,
    options: FinalOptions,
    *,
    front_latency: list[FrontLatency] | None = None,
) -> FinalSummary:
    """Steps 2 to 4 for ``candidates`` (trials table rows): fine-tune, choose, test once, save in ``staging``, measure.

    ``options`` says how (:class:`FinalOptions`); ``front_latency`` is recorded in the summary.
    """
    epochs = ctx.space.finetune.final_epochs if options.epochs is None else options.epochs
    start = time.perf_counter()
    tuned = finetune_candidates(ctx, candidates, shapes, epochs=epochs, progress=options.progress)
    chosen = choose_tuned(tuned, options.rule, tolerance=options.tolerance)
    test = evaluate(chosen.outcome.model, ctx.task.test_data, ctx.task)  # the one look at test
    inputs = save_final(ctx, staging, chosen, rule=options.recorded_rule, test_metric=test.metric)
    measured = measure_saved(ctx, staging, chosen.outcome.layers)
    return FinalSummary(
        chosen_trial=chosen.candidate.number,
        front_latency=front_latency,
        rule=options.recorded_rule,
        tolerance=options.tolerance,
        final_epochs=epochs,
        candidates=[t.candidate for t in tuned],
        val_metric=chosen.candidate.val_metric,
        test_metric=test.metric,
        test_loss=test.loss,
        dense=measured.dense,
        final=measured.final,
        budget_checks=budget_checks(ctx, measured, extra=options.extra_budgets),
        finalize_seconds=round(time.perf_counter() - start, 1),
        previous_final=None,
        metric=ctx.task.metric_name,
        chosen_start=chosen.candidate.start,
        inputs=inputs,
    )
