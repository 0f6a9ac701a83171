"""Another point of the front: the final model of a trial the user names, or of a tighter budget.

A search keeps candidates below its budget (the space's ``levels``), so its
trials already hold other trade-offs of accuracy against cost. :func:`pick`
turns one of them into a final model exactly as :func:`~autoprune.final.finalize`
turns the run's own pick into ``final/`` (the full fine-tune, one look at test,
the saved files reloaded and measured, every budget checked), without searching
again:

* ``trial=N``: trial N of the run (a complete, feasible candidate or recovery trial);
* ``budget="KIND=VALUE"``: under a tighter (or equal) budget, the best trial whose
  costs meet it by the run's rule: recovered validation metric first, then the
  confirmed one-shot metric (:mod:`autoprune.final._pick_select`).

The model goes to ``RUN_DIR/picks/trial-N/`` (or ``out``): ``policy.yaml``,
``model.safetensors`` and ``pick.json`` (the :class:`~autoprune.final.FinalSummary`
of ``final.json`` plus what was picked). A non-empty directory is replaced only
when it is an earlier pick's output (:mod:`autoprune.final._pick_files`).

Example:
    >>> try:
    ...     pick("run", trial=3, budget="params=0.1")
    ... except ParameterError as exc:
    ...     print(exc)
    Give exactly one of 'trial' (a trial number, --trial) and 'budget' (KIND=VALUE, --budget). Got trial=3 and budget='params=0.1' instead.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from autoprune._echo import shorten
from autoprune._validation import Interval, validate
from autoprune.budgets import Budget, parse_budget
from autoprune.errors import ParameterError
from autoprune.final._choose import export_tables
from autoprune.final._finalize import FinalOptions, _open, final_model
from autoprune.final._finetune import Shapes
from autoprune.final._pick_files import (
    PICK_FILE,
    PICK_STAGING,
    Pick,
    check_pick_out,
    publish_pick,
    read_pick,
    remove_staging,
    write_pick,
)
from autoprune.final._pick_select import best_under, budget_text, trial_row
from autoprune.final._publish import staging_dir
from autoprune.policy import Policy

__all__ = [
    "PICK_FILE",
    "Pick",
    "best_under",
    "budget_text",
    "check_pick_out",
    "pick",
    "publish_pick",
    "read_pick",
    "trial_row",
]


def _chosen_budget(budget) -> tuple[Budget, str]:
    if isinstance(budget, Budget):
        return budget, budget_text(budget)
    if not isinstance(budget, str):
        raise ParameterError(
            f"The 'budget' parameter must be a budget like params=0.1. Got {shorten(budget)} instead."
        )
    return parse_budget(budget), budget.strip()


def _check_choice(trial, budget) -> None:
    if (trial is None) == (budget is None):
        raise ParameterError(
            "Give exactly one of 'trial' (a trial number, --trial) and 'budget' (KIND=VALUE, "
            f"--budget). Got trial={shorten(trial)} and budget={shorten(budget)} instead."
        )
    if trial is not None:
        validate("trial", trial, Interval(int, 0, None))


def pick(
    result_or_run_dir,
    *,
    trial: int | None = None,
    budget: str | Budget | None = None,
    out: str | Path | None = None,
    epochs: float | None = None,
    progress: bool = True,
) -> Pick:
    """The final model of trial ``trial``, or of the best trial under ``budget``, made as finalize makes ``final/``.

    ``out`` defaults to ``RUN_DIR/picks/trial-N``; ``epochs`` to the space's
    ``final_epochs``. Returns the :class:`Pick`, also written to ``pick.json`` there.
    """
    _check_choice(trial, budget)
    if epochs is not None:
        validate("epochs", epochs, Interval(float, 0, None))
    result = _open(result_or_run_dir)
    run_dir, ctx = Path(result.run_dir), result.context
    trials, _ = export_tables(run_dir, result.study)
    new_budget, text = (None, None) if budget is None else _chosen_budget(budget)
    number = trial if new_budget is None else best_under(trials, new_budget, ctx, run_dir, text)
    row = trial_row(trials, number, run_dir)
    target = check_pick_out(Path(out) if out is not None else run_dir / "picks" / f"trial-{number}")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = staging_dir(target.parent, PICK_STAGING)
    try:
        summary = final_model(
            ctx,
            pd.DataFrame([row]),
            Shapes(ctx, {number: Policy.from_dict(json.loads(row.policy))}),
            staging,
            FinalOptions(
                epochs=epochs,
                progress=progress,
                label="best" if new_budget is not None else "trial",
                extra_budgets=() if new_budget is None else (new_budget,),
            ),
        )
        recover_of = None if pd.isna(row.recover_of) else int(row.recover_of)
        chosen = Pick(target, run_dir, number, text, summary, recover_of)
        write_pick(staging, chosen)
        publish_pick(run_dir, staging, target)
    except BaseException:
        remove_staging(staging)
        raise
    return chosen
