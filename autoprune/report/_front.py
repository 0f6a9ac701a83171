"""The data behind the Pareto plot and table: every trial classified, references marked.

Each completed trial is one of: ``front`` (feasible, recovered, not
dominated), ``dominated`` (feasible, recovered, dominated), ``one-shot``
(feasible and confirmed but not recovered: its metric is the pruned model's,
untrained), ``scored`` (a first look only: no metric measured) or
``infeasible`` (over budget). The dense model and the seed policies are marked
for comparison.

Example:
    >>> import pandas as pd
    >>> t = pd.DataFrame({"number": [0, 1, 2], "state": ["COMPLETE"] * 3, "feasible": [True, True, False],
    ...                   "fidelity": ["recovered", "recovered", "rejected"], "val_metric": [0.9, 0.8, 0.95],
    ...                   "cost": [0.5, 0.9, 1.3], "seed": ["", "uniform:unstructured", ""]})
    >>> list(classify(t)["category"])
    ['front', 'dominated', 'infeasible']
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from autoprune._pareto import pareto_mask


def classify(trials: pd.DataFrame) -> pd.DataFrame:
    """Completed trials with a ``category`` column (see the module docstring)."""
    done = trials[trials["state"] == "COMPLETE"].copy()
    fidelity = done["fidelity"]
    category = np.where(
        ~done["feasible"].astype(bool),
        "infeasible",
        np.where(
            fidelity == "recovered",
            "dominated",
            np.where(fidelity == "confirmed", "one-shot", "scored"),
        ),
    )
    done["category"] = category
    tuned = done["category"] == "dominated"
    if tuned.any():
        mask = pareto_mask(done.loc[tuned, "val_metric"], done.loc[tuned, "cost"])
        done.loc[done.index[tuned][mask], "category"] = "front"
    return done


def seed_rows(trials: pd.DataFrame) -> pd.DataFrame:
    """The seed-policy trials (uniform, sensitivity, global), for comparison."""
    if "seed" not in trials:
        return trials.iloc[0:0]
    return trials[(trials["seed"].fillna("") != "") & (trials["state"] == "COMPLETE")]


def shown_dir(run_dir) -> str:
    """The run directory as a command line names it: relative to the working directory when inside it."""
    import shlex
    from pathlib import Path

    path = Path(run_dir)
    if path.is_absolute():
        try:
            path = path.relative_to(Path.cwd())
        except ValueError:
            pass
    return shlex.quote(path.as_posix())


def pick_command(run_dir, number: int) -> str:
    """The one command that makes trial ``number`` of ``run_dir`` a final model.

    Example:
        >>> pick_command("results/runs/x", 12)
        'autoprune pick results/runs/x --trial 12'
    """
    return f"autoprune pick {shown_dir(run_dir)} --trial {int(number)}"


def best_structured(trials: pd.DataFrame, missed: frozenset[int] = frozenset()) -> pd.Series | None:
    """The feasible structured trial with the highest validation metric: recovered ones first, else confirmed.

    ``missed``: trials whose measured latency missed the budget after the search
    (they are not offered). None when the run tried no structured policy, or none
    of them met the budget.
    """
    needed = {"granularity", "fidelity", "feasible", "val_metric", "state"}
    if trials.empty or not needed <= set(trials.columns):
        return None
    pool = trials[
        (trials["state"] == "COMPLETE")
        & (trials["granularity"] == "structured")
        & trials["feasible"].astype(bool)
        & trials["val_metric"].notna()
        & ~trials["number"].isin(missed)
    ]
    for fidelity in ("recovered", "confirmed"):
        part = pool[pool["fidelity"] == fidelity]
        if not part.empty:
            return part.sort_values(["val_metric", "cost"], ascending=[False, True]).iloc[0]
    return None
