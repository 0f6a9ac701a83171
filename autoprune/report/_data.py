"""The report's data: every number of the report, computed from a run directory's files alone.

:func:`collect_report_data` reads ``run.json``, ``trials.csv``, ``front.csv``,
``final/final.json`` and ``sensitivity/`` and returns a :class:`ReportData`:
no prose, no drawing. A run with no finished trial, no feasible trial or no
final model yet gives what it has, and :attr:`ReportData.missing` lists what it
lacks (:data:`MISSING_TRIALS`, :data:`MISSING_FINAL`, :data:`MISSING_FRONT`).

Example:
    >>> run = {"setup": {"budgets": ["params=0.1"]}, "limits": {"params": 1000.0},
    ...        "dense_costs": {"params": 10000}}
    >>> dense_cost(run)
    10.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from autoprune.final import FinalSummary, read_final
from autoprune.report._files import read_run, read_table
from autoprune.report._front import best_structured, classify, seed_rows

MISSING_TRIALS, MISSING_FINAL, MISSING_FRONT = "trials.csv", "final/final.json", "front"
METRIC_ROWS = ("test_metric", "val_metric")
SPEEDUP_WORTH_IT = 1.1  # a measured speedup below this is no speedup
SENSITIVITY_GRANULARITIES = ("unstructured", "structured")


@dataclass(frozen=True)
class RunInfo:
    """What the run was asked to do, and its dense model (from ``run.json``)."""

    task: str
    budgets: list[str]
    limits: dict[str, float]
    space_name: str
    n_trials: int
    seed: int
    metric: str
    dense_val_metric: float
    dense_test_metric: float
    search_seconds: float | None
    sensitivity_seconds: float | None  # the total; None when the analysis did not run
    dense_epochs: float | None = None  # None when the dense model came from a checkpoint
    dense_costs: dict = field(default_factory=dict)  # params, macs, bytes of the dense model
    latency_errors: dict = field(default_factory=dict)  # latency model kind -> held-out error

    @property
    def cost_kind(self) -> str:
        """The first budget's kind: the cost axis of the front."""
        return self.budgets[0].split("=")[0]


@dataclass(frozen=True)
class Comparison:
    """One quantity of the final model against the dense model.

    ``difference`` (final - dense) is given for metrics, ``ratio`` (final / dense,
    None when the dense value is 0) for costs; ``speedup`` compares latencies the
    other way round (dense / final: the dense model's is 1).
    """

    quantity: str  # test_metric, val_metric, params, macs, bytes, latency_ms, speedup
    dense: float
    final: float
    difference: float | None = None
    ratio: float | None = None


@dataclass(frozen=True, eq=False)
class ParetoData:
    """The Pareto plot's data: every completed trial classified, and the references."""

    classified: pd.DataFrame
    seeds: pd.DataFrame
    dense_metric: float
    dense_cost: float  # the dense model's cost / limit of the first budget
    final_point: tuple[float, float] | None  # (cost / limit, final validation metric)
    category_counts: dict[str, int]
    final_trial: int | None = None  # the trial the final model was made of


@dataclass(frozen=True, eq=False)
class SensitivitySection:
    """One granularity's sensitivity figure (already drawn by the analysis) and ranking table."""

    granularity: str
    figure: Path
    ranking: pd.DataFrame | None


@dataclass(frozen=True)
class FailedTrial:
    number: int
    reason: str


@dataclass(frozen=True, eq=False)
class ReportData:
    """Every number of the report, and what the run lacks (see the module docstring)."""

    run_dir: Path
    run: RunInfo
    trials: pd.DataFrame
    front: pd.DataFrame | None
    final: FinalSummary | None
    n_complete: int
    n_failed: int
    comparison: list[Comparison] = field(default_factory=list)
    pinned: list[int] = field(default_factory=list)
    pareto: ParetoData | None = None
    sensitivity: list[SensitivitySection] = field(default_factory=list)
    failed: list[FailedTrial] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    structured: pd.Series | None = None  # the best feasible structured trial, if the run tried any

    @property
    def has_front(self) -> bool:
        return self.front is not None and not self.front.empty

    @property
    def sparse_not_faster(self) -> bool:
        """The final model keeps zeroed weights and is smaller on disk, yet its measured speedup is
        below :data:`SPEEDUP_WORTH_IT`."""
        final = self.final
        if final is None or final.final.bytes >= final.dense.bytes:
            return False
        if not any(zeroed_weights(layer) for layer in final.final.layers):
            return False  # every weight removed was removed with its channel: nothing sparse
        speedup = measured_speedup(final)
        return speedup is not None and speedup < SPEEDUP_WORTH_IT


def run_info(run: dict) -> RunInfo:
    """The run's request and dense model, from ``run.json``'s data."""
    setup, dense = run["setup"], run.get("dense", {})
    sensitivity = run.get("sensitivity_seconds")
    return RunInfo(
        task=setup["task"],
        budgets=list(setup["budgets"]),
        limits=dict(run.get("limits", {})),
        space_name=setup["space"].get("name", "?"),
        n_trials=setup["n_trials"],
        seed=setup["seed"],
        metric=dense.get("metric", "metric"),
        dense_val_metric=dense.get("val_metric", math.nan),
        dense_test_metric=dense.get("test_metric", math.nan),
        search_seconds=run.get("search_seconds"),
        sensitivity_seconds=sum(sensitivity.values()) if sensitivity else None,
        dense_epochs=dense.get("epochs"),
        dense_costs=dict(run.get("dense_costs", {})),
        latency_errors=dict(run.get("latency_errors") or {}),
    )


def dense_cost(run: dict) -> float:
    """The dense model's value of the first budget's kind over its limit (NaN when unknown)."""
    kind = run["setup"]["budgets"][0].split("=")[0]
    limit = run.get("limits", {}).get(kind)
    costs = run.get("dense_costs", {})
    dense_value = {
        "params": costs.get("params"),
        "macs": costs.get("macs"),
        "size": costs.get("bytes"),
        "latency": run.get("dense_latency_ms"),
    }.get(kind)
    return dense_value / limit if dense_value and limit else math.nan


def _cost(quantity: str, dense: float, final: float) -> Comparison:
    return Comparison(quantity, dense, final, ratio=final / dense if dense else None)


def zeroed_weights(layer: dict) -> bool:
    """Whether a layer of the final model keeps zeroed weights (sparse, not removed)."""
    after = layer.get("params_after")
    nonzero = layer.get("nonzero_params")
    return after is not None and nonzero is not None and nonzero < after


def measured_speedup(final: FinalSummary) -> float | None:
    """Dense median latency over the final model's, measured side by side (None without a latency)."""
    dense_ms, final_ms = final.dense.latency.median_ms, final.final.latency.median_ms
    return dense_ms / final_ms if final_ms > 0 else None


def final_comparison(final: FinalSummary) -> list[Comparison]:
    """Final against dense: metrics, parameters, dense-kernel MACs, bytes, median latency, speedup."""
    d, f = final.dense, final.final
    return [
        Comparison(
            "test_metric", d.test_metric, final.test_metric, final.test_metric - d.test_metric
        ),
        Comparison("val_metric", d.val_metric, final.val_metric, final.val_metric - d.val_metric),
        _cost("params", d.params, f.params),
        _cost("macs", d.macs, f.macs),
        _cost("bytes", d.bytes, f.bytes),
        _cost("latency_ms", d.latency.median_ms, f.latency.median_ms),
        Comparison("speedup", 1.0, measured_speedup(final) or math.nan),
    ]


def pareto_data(run: dict, trials: pd.DataFrame, front, final) -> ParetoData:
    """The Pareto plot's data from the trials table (at least one completed trial)."""
    classified = classify(trials)
    final_point = None
    if final is not None and front is not None and not front.empty:
        chosen = front[front["number"] == final.chosen_trial]
        if not chosen.empty:
            final_point = (float(chosen["cost"].iloc[0]), float(final.val_metric))
    return ParetoData(
        classified=classified,
        seeds=seed_rows(trials),
        dense_metric=run.get("dense", {}).get("val_metric", math.nan),
        dense_cost=dense_cost(run),
        final_point=final_point,
        category_counts=classified["category"].value_counts().to_dict(),
        final_trial=final.chosen_trial if final_point is not None else None,
    )


def sensitivity_sections(run_dir: Path) -> list[SensitivitySection]:
    """The sensitivity analyses the run has a figure of, unstructured first."""
    sections = []
    for granularity in SENSITIVITY_GRANULARITIES:
        sdir = run_dir / "sensitivity" / granularity
        if (sdir / "sensitivity.png").is_file():
            sections.append(
                SensitivitySection(
                    granularity, sdir / "sensitivity.png", read_table(sdir / "ranking.csv")
                )
            )
    return sections


def _missed_latency(final: FinalSummary | None) -> frozenset[int]:
    """Front trials whose measured latency missed the budget (none when nothing was measured)."""
    rows = final.front_latency if final is not None and final.front_latency else []
    return frozenset(r.number for r in rows if not r.met)


def collect_report_data(run_dir: str | Path) -> ReportData:
    """Every number of the report of ``run_dir``, from its files; nothing is drawn or written."""
    run_dir = Path(run_dir)
    run = read_run(run_dir)
    trials = read_table(run_dir / "trials.csv")
    front = read_table(run_dir / "front.csv")
    final = read_final(run_dir)
    missing = [MISSING_TRIALS] if trials is None else []
    trials = pd.DataFrame() if trials is None else trials
    complete = trials[trials["state"] == "COMPLETE"] if not trials.empty else trials
    failed = trials[trials["state"] == "FAIL"] if not trials.empty else trials
    missing += [MISSING_FINAL] if final is None else []
    missing += [MISSING_FRONT] if front is None or front.empty else []
    return ReportData(
        run_dir=run_dir,
        run=run_info(run),
        trials=trials,
        front=front,
        final=final,
        n_complete=len(complete),
        n_failed=len(failed),
        comparison=final_comparison(final) if final is not None else [],
        pinned=[c.number for c in final.candidates if c.pinned] if final is not None else [],
        pareto=pareto_data(run, trials, front, final) if not complete.empty else None,
        sensitivity=sensitivity_sections(run_dir),
        failed=[FailedTrial(int(r.number), r.fail_reason) for r in failed.itertuples()],
        missing=missing,
        structured=best_structured(trials, _missed_latency(final)),
    )
