"""The data behind the Pareto plot and table: every trial classified, references marked.

Each completed trial is one of: ``front`` (feasible, fine-tuned, not
dominated), ``dominated`` (feasible, fine-tuned, dominated), ``screened``
(feasible but not fine-tuned: its metric is a screening value),
``infeasible`` (over budget). The dense model and the seed policies (uniform,
sensitivity, global) are marked for comparison.

Example:
    >>> import pandas as pd
    >>> t = pd.DataFrame({"number": [0, 1, 2], "state": ["COMPLETE"] * 3, "feasible": [True, True, False],
    ...                   "fidelity": ["finetuned", "finetuned", "rejected"], "val_metric": [0.9, 0.8, 0.95],
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
    category = np.where(
        ~done["feasible"].astype(bool),
        "infeasible",
        np.where(done["fidelity"] == "finetuned", "dominated", "screened"),
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
