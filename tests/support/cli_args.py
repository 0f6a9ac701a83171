"""Command lines shared by the tests that drive ``autoprune search`` end to end."""

from __future__ import annotations


def digits_search(trials: int, *extra: str) -> list[str]:
    """Arguments of a small search: digits-mlp under params=0.3 in the quick space.

    Example:
        >>> digits_search(4, "--quiet")[-3:]
        ['--trials', '4', '--quiet']
    """
    return [
        "search",
        "--task",
        "digits-mlp",
        "--budget",
        "params=0.3",
        "--space",
        "quick",
        "--trials",
        str(trials),
        *extra,
    ]


def candidates(trials):
    """The candidate trials of a trials table or a list of Optuna trials (not the recovery trials).

    Example:
        >>> import pandas as pd
        >>> len(candidates(pd.DataFrame({"recover_of": [float("nan"), 3.0]})))
        1
    """
    if hasattr(trials, "recover_of"):
        return trials[trials.recover_of.isna()]
    return [t for t in trials if "recover_of" not in t.user_attrs]
