"""Step 1 of the final model: the run's front, its measured latency, and the shortlist.

The search only estimated latency; under a latency budget every front
candidate is pruned from the dense model and measured side by side with it
(:func:`measure_front_latency`), and the shortlist is drawn from those that
really meet the budget (the most accurate candidate narrowed to fit first when
it measures just over, :mod:`autoprune.final._tighten`); when none does, from
the one measured fastest, the closest to it (the final model's budget check
then says it is over). (The search aims
:data:`~autoprune.budgets.LATENCY_MARGIN` under the limit; preferring the
candidates measured that far under it left the pick to far smaller ones.)

Example:
    >>> import pandas as pd
    >>> front = pd.DataFrame({"number": [4, 7], "val_metric": [0.8, 0.9], "cost": [0.5, 0.9]})
    >>> rows = [FrontLatency(4, 1.0, 1.1, 0.4, 1.2, True), FrontLatency(7, 1.0, 1.5, 0.6, 1.2, False)]
    >>> list(meeting_latency(front, rows).number), list(meeting_latency(front, None).number)
    ([4], [4, 7])
    >>> over = [FrontLatency(4, 1.0, 1.3, 0.4, 1.2, False), FrontLatency(7, 1.0, 1.5, 0.6, 1.2, False)]
    >>> list(meeting_latency(front, over).number)  # none meets: the closest, not the most accurate
    [4]
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from autoprune._io import write_text
from autoprune.budgets import Budget, parse_budgets
from autoprune.errors import RunError
from autoprune.final._summary import FrontLatency
from autoprune.introspect import side_by_side_latency
from autoprune.policy import Policy


def export_tables(run_dir: Path, study) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write ``trials.csv`` and ``front.csv`` from the study; returns both tables."""
    from autoprune.search import front_of, trials_frame

    trials = trials_frame(study)
    front = front_of(trials)
    write_text(run_dir / "trials.csv", trials.to_csv(index=False))
    write_text(run_dir / "front.csv", front.to_csv(index=False))
    return trials, front


def front_of_run(run_dir: Path, study) -> pd.DataFrame:
    """The run's front (its tables written afresh); a RunError when there is nothing to finalize."""
    trials, front = export_tables(run_dir, study)
    if trials.empty or not (trials.state == "COMPLETE").any():
        raise RunError(f"{run_dir} has no finished trial yet: resume the search to get one.")
    if front.empty:
        raise RunError(
            f"{run_dir} has no feasible fine-tuned trial: nothing to finalize. "
            "Run more trials or loosen the budget; the report can still show the trials."
        )
    return front


def front_policies(front: pd.DataFrame) -> dict[int, Policy]:
    """Trial number -> the policy it tried, for every front row."""
    return {int(row.number): Policy.from_dict(json.loads(row.policy)) for row in front.itertuples()}


def latency_budget(budgets: list[str]) -> Budget | None:
    """The run's latency budget, if it has one."""
    return next((b for b in parse_budgets(budgets) if b.kind == "latency"), None)


def timed_beside_dense(ctx, models: dict, *, rounds: int = 5) -> dict:
    """Median latency and spread of each of ``models`` and of the dense model (``"dense"``),
    measured in ``rounds`` interleaved rounds at the run's batch size and threads."""
    setup = ctx.setup
    return side_by_side_latency(
        {"dense": ctx.dense, **models},
        ctx.example_input,
        batch_size=setup.latency_batch_size,
        threads=setup.latency_threads,
        rounds=rounds,
    )


def measure_front_latency(ctx, front: pd.DataFrame, models: dict, budget) -> list[FrontLatency]:
    """Measured latency of every front candidate (``models``: number -> pruned model), side by side with the dense model.

    A relative budget is checked against the dense model measured in the same rounds.
    """
    latency = timed_beside_dense(ctx, models, rounds=3)
    dense = latency["dense"]["median_ms"]
    limit = budget.limit(dense)
    rows = []
    for row in front.itertuples():
        measured = latency[int(row.number)]["median_ms"]
        rows.append(
            FrontLatency(
                number=int(row.number),
                estimated_ms=float(row.latency_ms),
                measured_ms=measured,
                measured_vs_dense=measured / dense,
                limit_ms=limit,
                met=measured <= limit,
            )
        )
    return rows


def meeting_latency(front: pd.DataFrame, rows: list[FrontLatency] | None) -> pd.DataFrame:
    """The front rows whose measured latency meets the budget; when none does, the one measured
    fastest (the front as it is when nothing was measured)."""
    if not rows:
        return front
    meeting = [r.number for r in rows if r.met] or [min(rows, key=lambda r: r.measured_ms).number]
    return front[front["number"].isin(meeting)]
