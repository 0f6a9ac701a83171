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
