"""Preparing a study: the once-per-study work every worker then shares.

:func:`prepare_study` trains or loads the dense model, checks that the budgets
leave something to prune, measures the dense latency and the latency samples
when a latency budget is set, and runs the sensitivity analysis. The result is
a :class:`PreparedStudy`: plain data, stored in the study's user attributes, so a
worker on another machine needs only the storage URL and the study name.

Example:
    >>> p = PreparedStudy(device="cpu", dense={"val_metric": 0.9}, dense_digest="ab",
    ...                   dense_costs={"params": 10})
    >>> PreparedStudy.from_dict(p.to_dict()) == p
    True
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from autoprune.budgets import (
    CostModel,
    fit_latency_models,
    load_or_measure_table,
    load_or_sample,
    measure_costs,
    parse_budgets,
)
from autoprune.errors import BudgetError, RunError
from autoprune.introspect import measure_latency
from autoprune.search._setup import SearchSetup
from autoprune.search._space import SearchSpace
from autoprune.sensitivity import SensitivityOptions, analyse_sensitivity, weights_digest
from autoprune.tasks import Task
from autoprune.training import dense_model


@dataclass(frozen=True)
class PreparedStudy:
    """What the preparation of a study found (see the module docstring)."""

    device: str
    dense: dict  # the dense model's info: metric name, validation and test metric, training time
    dense_digest: str  # weights digest: every worker must hold this very dense model
    dense_costs: dict  # params, MACs, bytes (and latency when measured)
    dense_latency: dict | None = (
        None  # LatencyStats.as_dict() of the dense model, latency budgets only
    )
    latency_samples: list[dict] = field(default_factory=list)
    latency_table: list[dict] = field(default_factory=list)  # LatencyTable.to_records()
    latency_errors: dict[str, float] = field(default_factory=dict)  # model kind -> held-out error
    sensitivity: dict[str, dict] = field(
        default_factory=dict
    )  # granularity -> {dense_metric, rows, seconds}
    notes: list[str] = field(default_factory=list)
    prepared_by: str = ""

    @property
    def dense_latency_ms(self) -> float | None:
        return None if self.dense_latency is None else self.dense_latency["median_ms"]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> PreparedStudy:
        if not isinstance(data, dict) or "dense_digest" not in data:
            raise RunError(
                "The study's stored preparation is damaged; start the search in a new --out."
            )
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def run_info(self) -> dict:
        """What ``run.json`` records of the preparation (not the bulky tables)."""
        info = {
            k: v
            for k, v in self.to_dict().items()
            if k not in ("sensitivity", "latency_samples", "latency_table")
        }
        info["dense_latency_ms"] = self.dense_latency_ms
        info["sensitivity_seconds"] = {g: d["seconds"] for g, d in self.sensitivity.items()}
        return info


def _latency_table(setup, run_dir, task, model, samples, progress) -> tuple[list, dict]:
    """The per-layer latency table (records) and every latency model's held-out error."""
    import pandas as pd

    example = task.example_input.to(setup.device)
    cost_model = CostModel(model, example, scope=task.cost_modules)
    table = load_or_measure_table(
        run_dir / "latency_table.csv",
        model,
        example,
        free=cost_model.shrinkable(),
        batch_size=setup.latency_batch_size,
        threads=setup.latency_threads,
        progress=progress,
    )
    models = fit_latency_models(pd.DataFrame(samples), list(cost_model.layers), table)
    return table.to_records(), {kind: m.holdout_error_ for kind, m in models.items()}


def prepare_study(
    setup: SearchSetup,
    run_dir: Path,
    task: Task,
    *,
    progress: bool = True,
    backend: str = "loky",
    scheduler: str | None = None,
) -> PreparedStudy:
    """Dense model, budget checks, latency samples and sensitivity: the once-per-study work."""
    budgets = parse_budgets(setup.budgets)
    space = SearchSpace.from_dict(setup.space)
    dense = dense_model(task, seed=setup.seed, progress=progress)
    dense.model.to(setup.device)
    base_costs = measure_costs(dense.model, task.example_input, scope=task.cost_modules)
    costs, dense_latency, samples, table, errors = base_costs, None, [], [], {}
    if any(b.kind == "latency" for b in budgets):
        stats = measure_latency(
            dense.model,
            task.example_input.to(setup.device),
            batch_size=setup.latency_batch_size,
            threads=setup.latency_threads,
            repeats=60,
            warmup=10,
        )
        dense_latency = stats.as_dict()
        costs = costs.with_latency(stats.median_ms)
    check_dense_is_over(budgets, costs)  # before the slow part: latency samples and sensitivity
    if dense_latency is not None:
        samples = load_or_sample(
            run_dir / "latency_samples.csv",
            dense.model,
            task.example_input.to(setup.device),
            batch_size=setup.latency_batch_size,
            threads=setup.latency_threads,
            seed=setup.seed,
        ).to_dict(orient="records")
        table, errors = _latency_table(setup, run_dir, task, dense.model, samples, progress)
    sensitivity, notes = {}, []
    if setup.sensitivity and space.sensitivity.enabled:
        sensitivity, notes = _sensitivity(
            setup,
            space,
            run_dir,
            task,
            dense.model.cpu(),
            progress=progress,
            backend=backend,
            scheduler=scheduler,
        )
    return PreparedStudy(
        device=setup.device,
        dense={k: v for k, v in dense.info.items() if k != "path"},
        dense_digest=weights_digest(dense.model),
        dense_costs=base_costs.as_dict(),
        dense_latency=dense_latency,
        latency_samples=samples,
        latency_table=table,
        latency_errors=errors,
        sensitivity=sensitivity,
        notes=notes,
    )


def _sensitivity(
    setup, space, run_dir, task, model, *, progress, backend, scheduler
) -> tuple[dict, list[str]]:
    """Per-granularity sensitivity tables; a model that cannot be traced gets a note instead."""
    out, notes = {}, []
    for granularity in ("unstructured", "structured"):
        if granularity not in space.granularities:
            continue
        grid = (
            space.sensitivity.grid
            if granularity == "unstructured"
            else space.sensitivity.structured_grid
        )
        try:
            sens = analyse_sensitivity(
                model,
                task,
                criterion=space.sensitivity.criterion,
                granularity=granularity,
                grid=grid,
                val_items=space.sensitivity.val_items,
                seed=setup.seed,
                options=SensitivityOptions(
                    n_jobs=-1 if backend == "dask" else 1,
                    backend=backend,
                    scheduler=scheduler,
                    progress=progress,
                ),
            )
        except (
            Exception
        ) as exc:  # an untraceable model has no structured sensitivity; say so, go on
            if granularity == "unstructured":
                raise
            notes.append(f"structured sensitivity skipped: {exc}")
            continue
        sens.save(run_dir / "sensitivity" / granularity, tolerance=space.sensitivity.tolerance)
        out[granularity] = {
            "dense_metric": sens.dense_metric,
            "rows": sens.to_records(),
            "seconds": round(sens.seconds, 2),
        }
    return out, notes


def check_dense_is_over(budgets, costs) -> None:
    """Refuse budgets the dense model already meets: there would be nothing to prune for."""
    for budget in budgets:
        value, limit = costs.of(budget.kind), budget.limit(costs.of(budget.kind))
        if value <= limit:
            raise BudgetError(
                f"The dense model already meets the budget {budget} (it has {value:,.6g}, the limit is {limit:,.6g}); "
                "there is nothing to prune for. Tighten the budget."
            )
