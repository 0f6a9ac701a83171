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
  confirmed one-shot metric.

The model goes to ``RUN_DIR/picks/trial-N/`` (or ``out``): ``policy.yaml``,
``model.safetensors`` and ``pick.json`` (the :class:`~autoprune.final.FinalSummary`
of ``final.json`` plus what was picked). A non-empty directory is replaced only
when it is an earlier pick's output.

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

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from autoprune._echo import shorten
from autoprune._io import read_json, write_json
from autoprune._validation import Interval, validate
from autoprune.budgets import Budget, parse_budget
from autoprune.budgets._budget import UNIT_NAMES
from autoprune.errors import AutopruneError, BudgetError, ParameterError, RunError
from autoprune.final._choose import export_tables
from autoprune.final._finalize import _open, final_model
from autoprune.final._finetune import Shapes
from autoprune.final._publish import staging_dir
from autoprune.final._summary import FinalSummary
from autoprune.out_dir import POLICY_FILE, WEIGHTS_FILE
from autoprune.policy import Policy

PICK_FILE = "pick.json"
PICK_FILES = (POLICY_FILE, WEIGHTS_FILE, PICK_FILE)  # what a pick writes, and all it writes
PICK_STAGING = ".pick-"
COST_COLUMN = {"params": "params", "macs": "macs", "size": "bytes", "latency": "latency_ms"}
RANKED = ("recovered", "confirmed")  # the run's rule: recovered metric first, then one-shot


@dataclass(frozen=True)
class Pick:
    """A picked trial's final model: where it is, which trial, why (``budget``), what was measured.

    ``recover_of`` is the candidate trial a recovery trial trained back (None for a candidate).
    """

    out: Path
    run_dir: Path
    trial: int
    budget: str | None
    summary: FinalSummary
    recover_of: int | None = None

    def to_dict(self) -> dict:
        """Plain data in the layout of ``pick.json``: the summary plus a ``pick`` entry."""
        picked = {
            "run_dir": str(self.run_dir),
            "trial": self.trial,
            "budget": self.budget,
            "recover_of": self.recover_of,
        }
        return {"pick": picked, **self.summary.to_dict()}


def read_pick(directory: str | Path) -> Pick:
    """The :class:`Pick` saved in ``directory`` (its ``pick.json``)."""
    directory = Path(directory)
    path = directory / PICK_FILE
    data = read_json(path)
    picked = data.get("pick") if isinstance(data, dict) else None
    if not isinstance(picked, dict) or not {"run_dir", "trial", "budget"} <= set(picked):
        raise RunError(f"{path} has no valid 'pick' entry: the file is damaged (pick again).")
    try:
        summary = FinalSummary.from_dict(data)
    except RunError as exc:
        raise RunError(f"{path}: {exc}") from exc
    recover_of = picked.get("recover_of")
    return Pick(
        directory,
        Path(picked["run_dir"]),
        int(picked["trial"]),
        picked["budget"],
        summary,
        None if recover_of is None else int(recover_of),
    )


# ---------------------------------------------------------------------- which trial


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
        if own.kind == budget.kind and limit > ctx.limits[own.kind] * (1 + 1e-9):
            raise BudgetError(
                f"The budget {text} (limit {limit:,.6g} {UNIT_NAMES[budget.kind]}) must be tighter than "
                f"or equal to the run's {own} (limit {ctx.limits[own.kind]:,.6g}): the run holds no "
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


# ---------------------------------------------------------------------- where it goes


def check_pick_out(out: str | Path) -> Path:
    """``out`` as a Path if a pick may write there: new, empty, or an earlier pick's output.

    Example:
        >>> import tempfile
        >>> out = Path(tempfile.mkdtemp())
        >>> check_pick_out(out) == out
        True
        >>> _ = (out / "notes.txt").write_text("mine")
        >>> try:
        ...     check_pick_out(out)
        ... except AutopruneError as exc:
        ...     "is not the output of an earlier 'autoprune pick'" in str(exc)
        True
    """
    out = Path(out)
    shown = shorten(str(out), text=True)
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise AutopruneError(
            f"The output path {shown} exists and is not a directory; autoprune never replaces it. "
            "Choose another --out."
        )
    entries = sorted(out.iterdir()) if out.is_dir() else []
    ours = (out / PICK_FILE).is_file() and all(
        e.name in PICK_FILES and e.is_file() and not e.is_symlink() for e in entries
    )
    if entries and not ours:
        names = [e.name for e in entries]
        listed = ", ".join(shorten(n, 60, text=True) for n in names[:3])
        listed += f" and {len(names) - 3} more" if len(names) > 3 else ""
        raise AutopruneError(
            f"The output directory {shown} is not empty and is not the output of an earlier "
            f"'autoprune pick' (it holds {listed}); a pick replaces only its own output. "
            "Choose another --out."
        )
    return out


def publish_pick(run_dir: Path, staging: Path, out: Path) -> None:
    """Rename ``staging`` to ``out``; an earlier pick there is replaced whole, under the run's lock."""
    from autoprune.search._lock import FileLock

    with FileLock(run_dir / ".pick.lock"):
        check_pick_out(out)  # again: nothing foreign came in while the model was fine-tuned
        old = None
        if out.is_dir():
            old = staging.with_name(staging.name + "-old")
            out.rename(old)
        staging.rename(out)
    if old is not None:  # an earlier pick's files only (checked above)
        for entry in old.iterdir():
            entry.unlink()
        old.rmdir()


# ---------------------------------------------------------------------- the command


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
            epochs=epochs,
            progress=progress,
            label="best" if new_budget is not None else "trial",
            extra_budgets=() if new_budget is None else (new_budget,),
        )
        recover_of = None if pd.isna(row.recover_of) else int(row.recover_of)
        chosen = Pick(target, run_dir, number, text, summary, recover_of)
        write_json(staging / PICK_FILE, _finite(chosen.to_dict()))
        publish_pick(run_dir, staging, target)
    except BaseException:
        _remove(staging)
        raise
    return chosen


def _finite(data):
    """``data`` with NaN numbers (a trial never validated) as None: ``pick.json`` stays strict JSON."""
    if isinstance(data, float) and math.isnan(data):
        return None
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_finite(v) for v in data]
    return data


def _remove(staging: Path) -> None:
    import shutil

    if staging.is_dir() and staging.name.startswith(PICK_STAGING + str(os.getpid())):
        shutil.rmtree(staging, ignore_errors=True)
