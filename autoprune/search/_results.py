"""A finished (or running) study as tables: every trial, and the Pareto front.

A trial's *fidelity* says how far it got: ``rejected`` (over its budget, or
unable to fit it), ``scored`` (a first look at its distance from the dense
model), ``confirmed`` (the distance on every calibration item and a one-shot
validation metric) or ``recovered`` (trained back: the validation metric of the
model the final pick is made among). ``provenance`` says where a candidate came
from: ``seed`` (a heuristic), ``startup`` (a uniform draw before any candidate
was confirmed) or ``sampler`` (a child of a confirmed candidate); a recovery
trial keeps its candidate's.

Example:
    >>> import optuna
    >>> study = optuna.create_study(directions=["maximize", "minimize"])
    >>> for metric, cost in [(0.9, 1.0), (0.8, 0.5), (0.7, 0.9)]:
    ...     trial = study.ask()
    ...     trial.set_user_attr("fidelity", "recovered")
    ...     trial.set_user_attr("val_metric", metric)
    ...     trial.set_constraint("params", cost - 1.0)
    ...     _ = study.tell(trial, [metric, cost])
    >>> front_of(trials_frame(study))[["number", "val_metric", "cost"]].values.tolist()
    [[1.0, 0.8, 0.5], [0.0, 0.9, 1.0]]
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from optuna.trial import TrialState

from autoprune._pareto import pareto_mask

TRIAL_COLUMNS = [
    "number",
    "state",
    "fidelity",
    "provenance",
    "seed",
    "level",
    "granularity",
    "scope",
    "criterion",
    "fitness",
    "first_look",
    "val_metric",
    "cost",
    "params",
    "macs",
    "bytes",
    "latency_ms",
    "latency_modelled_ms",
    "latency_measured_ms",
    "feasible",
    "repaired",
    "seconds",
    "worker",
    "fail_reason",
    "retry_of",
    "recover_of",
    "schedule",
    "blocks_removed",
    "inputs_kept",
    "policy",
]


def _row(trial) -> dict:
    attrs, params = trial.user_attrs, trial.params
    costs = attrs.get("costs", {})
    constraints = trial.constraints
    complete = trial.state == TrialState.COMPLETE
    latency = costs.get("latency_ms", costs.get("latency"))
    return {
        "number": trial.number,
        "state": trial.state.name,
        "fidelity": attrs.get("fidelity", ""),
        "provenance": attrs.get("provenance", ""),
        "seed": attrs.get("seed", ""),
        "level": attrs.get("level", params.get("level", math.nan)),
        "granularity": attrs.get("granularity", params.get("granularity", "")),
        "scope": attrs.get("scope", attrs.get("policy", {}).get("scope", "")),
        "criterion": attrs.get("criterion", params.get("criterion", "")),
        "fitness": attrs.get("fitness", math.nan),
        "first_look": attrs.get("first_look", math.nan),
        "val_metric": attrs.get("val_metric", math.nan),
        "cost": trial.values[1] if complete and trial.values else attrs.get("cost", math.nan),
        "params": costs.get("params", math.nan),
        "macs": costs.get("macs", math.nan),
        "bytes": costs.get("bytes", costs.get("size", math.nan)),
        "latency_ms": latency if latency is not None else math.nan,
        "latency_modelled_ms": attrs.get("latency_modelled_ms", math.nan),
        "latency_measured_ms": attrs.get("latency_measured_ms", math.nan),
        "feasible": bool(constraints) and all(v <= 0 for v in constraints.values()),
        "repaired": bool(attrs.get("repaired", False)),
        "seconds": attrs.get("seconds", math.nan),
        "worker": attrs.get("worker", ""),
        "fail_reason": attrs.get("fail_reason", ""),
        "retry_of": attrs.get("retry_of", attrs.get("replaces", math.nan)),
        "recover_of": attrs.get("recover_of", math.nan),
        "schedule": attrs.get("schedule", ""),
        "blocks_removed": " ".join(attrs.get("blocks", [])),
        "inputs_kept": len(attrs["inputs"]) if "inputs" in attrs else math.nan,
        "policy": json.dumps(attrs["policy"], sort_keys=True) if "policy" in attrs else "",
    }


def trials_frame(study) -> pd.DataFrame:
    """One row per trial that ran (not the queued slots), ordered by number."""
    trials = study.get_trials(deepcopy=False)
    lost = {  # a trial lost to silent heartbeats carries no reason of its own: its retry says why
        t.user_attrs["retry_of"]: t.user_attrs["lost_reason"]
        for t in trials
        if "lost_reason" in t.user_attrs
    }
    rows = []
    for trial in trials:
        if trial.state != TrialState.WAITING:
            row = _row(trial)
            row["fail_reason"] = row["fail_reason"] or lost.get(trial.number, "")
            rows.append(row)
    return pd.DataFrame(rows, columns=TRIAL_COLUMNS)


def front_of(trials: pd.DataFrame, fidelity: str | None = None) -> pd.DataFrame:
    """Non-dominated feasible trials over (validation metric, cost), cheapest first.

    Among recovered trials (the ones the final pick is made among) when there are
    any, else among confirmed ones (their one-shot metric); ``fidelity`` chooses.
    """
    done = trials[(trials.state == "COMPLETE") & trials.feasible]
    if fidelity is None:
        fidelity = "recovered" if (done.fidelity == "recovered").any() else "confirmed"
    pool = done[(done.fidelity == fidelity) & done.val_metric.notna()]
    if pool.empty:
        return pool.copy()
    mask = pareto_mask(pool.val_metric.to_numpy(), pool.cost.to_numpy())
    return (
        pool[mask]
        .sort_values(["cost", "val_metric"], ascending=[True, False])
        .reset_index(drop=True)
    )


@dataclass
class SearchResult:
    """What a search leaves: the study, every trial, the front, where it all lives."""

    run_dir: Path
    study: object
    trials: pd.DataFrame
    front: pd.DataFrame
    context: object  # the SearchContext the trials ran with
    seconds: float  # search wall time, summed over every session that ran this run's trials

    @property
    def best(self) -> pd.Series | None:
        """The feasible fine-tuned trial with the highest validation metric (None if there is none)."""
        if self.front.empty:
            return None
        return self.front.sort_values(["val_metric", "cost"], ascending=[False, True]).iloc[0]
