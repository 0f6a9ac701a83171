"""Which trial a pick takes: a trial the user names, or the best one under a tighter budget.

Example:
    >>> import pandas as pd
    >>> trials = pd.DataFrame({"number": [0, 1, 2], "state": ["COMPLETE", "FAIL", "COMPLETE"],
    ...     "fidelity": ["confirmed", "", "rejected"], "feasible": [True, False, False],
    ...     "fail_reason": ["", "diverged", ""], "policy": ["{}", "", "{}"]})
    >>> int(trial_row(trials, 0, "run").number)
    0
    >>> try:
    ...     trial_row(trials, 7, "run")
    ... except RunError as exc:
    ...     print(exc)
    The trial number must be one of the trials of run (0 to 2; see its trials.csv). Got 7 instead.
"""

from __future__ import annotations

import pandas as pd

from autoprune._echo import shorten
from autoprune.budgets import Budget
from autoprune.budgets._budget import UNIT_NAMES
from autoprune.errors import BudgetError, RunError

COST_COLUMN = {"params": "params", "macs": "macs", "size": "bytes", "latency": "latency_ms"}
RANKED = ("recovered", "confirmed")  # the run's rule: recovered metric first, then one-shot


def _numbers(trials: pd.DataFrame) -> str:
    if trials.empty:
        return "it has none yet"
    return f"{int(trials.number.min())} to {int(trials.number.max())}; see its trials.csv"


def trial_row(trials: pd.DataFrame, number: int, run_dir) -> pd.Series:
    """The row of trial ``number`` if it has a model to pick, else a RunError saying why not."""
    rows = trials[trials.number == number]
    if rows.empty:
        raise RunError(
            f"The trial number must be one of the trials of {shorten(str(run_dir), text=True)} "
            f"({_numbers(trials)}). Got {shorten(number)} instead."
        )
    row = rows.iloc[0]
    where = f"Trial {number} of {shorten(str(run_dir), text=True)}"
    if row.state != "COMPLETE":
        reason = str(row.fail_reason or "").strip()
        said = "failed" if row.state == "FAIL" else f"is {str(row.state).lower()}"
        raise RunError(
            f"{where} {said}{f' ({shorten(reason, text=True)})' if reason else ''}: it has no model "
            "to pick. Choose a complete trial (see trials.csv)."
        )
    if row.fidelity == "rejected" or not bool(row.feasible):
        raise RunError(
            f"{where} was rejected: its costs do not meet the run's budget. Choose a feasible trial "
            "(see trials.csv), or pick by --budget."
        )
    if not row.policy:
        raise RunError(
            f"{where} recorded no policy: it has no model to pick. Choose another trial."
        )
    return row


def budget_text(budget: Budget) -> str:
    """``KIND=VALUE`` of a budget, as the command line reads it.

    Example:
        >>> from autoprune.budgets import parse_budget
        >>> budget_text(parse_budget("params=10%")), budget_text(parse_budget("latency=5ms"))
        ('params=0.1', 'latency=5ms')
    """
    unit = "" if budget.relative else {"size": "b", "latency": "ms"}.get(budget.kind, "")
    return f"{budget.kind}={budget.value:g}{unit}"


def _new_search(ctx, text: str) -> str:
    return f"run a new search under it (autoprune search --task {ctx.setup.task} --budget {text})"


def _dense_value(ctx, budget: Budget, text: str) -> float:
    """The dense model's value of the budget's kind (what a relative budget is a fraction of)."""
    if budget.kind == "latency" and ctx.latency_model is None:
        raise BudgetError(
            f"The budget {text} needs latency estimates, but the run was searched without a latency "
            f"budget and has none: {_new_search(ctx, text)}."
        )
    return ctx.dense_costs.of(budget.kind)


def _check_tighter(ctx, budget: Budget, limit: float, text: str) -> None:
    """A re-pick stays inside the run's own budget of the same kind: the search saw nothing beyond it."""
    for own in ctx.budgets:
        own_limit = ctx.limit(own)
        if own.kind == budget.kind and limit > own_limit * (1 + 1e-9):
            raise BudgetError(
                f"The budget {text} (limit {limit:,.6g} {UNIT_NAMES[budget.kind]}) must be tighter than "
                f"or equal to the run's {own} (limit {own_limit:,.6g}): the run holds no "
                f"trial beyond its budget; {_new_search(ctx, text)}."
            )


def best_under(trials: pd.DataFrame, budget: Budget, ctx, run_dir, text: str | None = None) -> int:
    """The number of the best trial whose costs meet ``budget`` (and the run's), by the run's rule.

    Recovered trials rank first (validation metric, then cost), then confirmed ones
    (one-shot metric, then cost). None meeting it is a BudgetError naming the smallest
    cost the run reached.
    """
    text = text or budget_text(budget)
    limit = budget.limit(_dense_value(ctx, budget, text))
    _check_tighter(ctx, budget, limit, text)
    column = COST_COLUMN[budget.kind]
    pool = trials[
        (trials.state == "COMPLETE")
        & trials.feasible.astype(bool)
        & trials.fidelity.isin(RANKED)
        & trials.val_metric.notna()
        & trials[column].notna()
    ]
    if pool.empty:
        raise RunError(
            f"{shorten(str(run_dir), text=True)} has no feasible trial with a validation metric yet: "
            "resume the search to get one."
        )
    values = pool[column].astype(float)
    meeting = pool[values <= limit]
    if meeting.empty:
        smallest = pool.loc[values.idxmin()]
        raise BudgetError(
            f"No trial of {shorten(str(run_dir), text=True)} meets the budget {text} (limit "
            f"{limit:,.6g} {UNIT_NAMES[budget.kind]}): the smallest {budget.kind} the run reached is "
            f"{float(smallest[column]):,.6g} (trial {int(smallest.number)}); {_new_search(ctx, text)}."
        )
    ranked = meeting.assign(_tier=[RANKED.index(f) for f in meeting.fidelity]).sort_values(
        ["_tier", "val_metric", "cost"], ascending=[True, False, True], kind="stable"
    )
    return int(ranked.iloc[0].number)
