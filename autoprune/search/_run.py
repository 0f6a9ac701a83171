"""Preparing a run: the run directory, the study, and what every worker shares.

Preparation happens once per study (by whichever process creates it):
train or load the dense model, check the budgets make sense, run the
sensitivity analysis, measure latency samples when a latency budget is set.
The results go to the run directory (``run.json``, ``sensitivity/``,
``latency_samples.csv``) *and* into the study's user attributes, so a worker
on another machine needs only the storage URL and the study name.

Example:
    >>> default_run_dir("fashion-cnn", ["params=0.1"]).as_posix()
    'results/runs/fashion-cnn-params0.1'
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from autoprune._io import read_json, write_json
from autoprune.budgets import load_or_sample, measure_costs, parse_budgets
from autoprune.checkpoints import dense_model
from autoprune.errors import BudgetError, RunError
from autoprune.introspect import measure_latency
from autoprune.search._context import SearchContext
from autoprune.search._setup import SearchSetup
from autoprune.search._space import SearchSpace
from autoprune.sensitivity import analyse_sensitivity, weights_digest
from autoprune.tasks import Task

RUNS_DIR = Path("results/runs")
SETUP_ATTR = "autoprune:setup"
SHARED_ATTR = "autoprune:shared"
SEEDED_ATTR = "autoprune:seeded"


def default_run_dir(task_name: str, budgets) -> Path:
    """``results/runs/<task>-<budgets>``."""
    slugs = "-".join(b.slug for b in parse_budgets(budgets))
    return RUNS_DIR / f"{task_name}-{slugs}"


def open_storage(run_dir: Path, url: str | None):
    """The study storage: a journal file in the run directory by default, or an Optuna URL."""
    import optuna

    if url is None:
        from optuna.storages.journal import JournalFileBackend

        run_dir.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(str(run_dir / "study.journal")))
    from autoprune.search._storage import database_storage

    return database_storage(url)


def check_setup(run_dir: Path, setup: SearchSetup) -> None:
    """Refuse to mix two different searches in one run directory."""
    path = run_dir / "run.json"
    if not path.is_file():
        return
    previous = SearchSetup.from_dict(read_json(path)["setup"])
    differences = previous.differences(setup)
    if differences:
        raise RunError(
            f"{run_dir} holds a different search (it differs in: {', '.join(differences)}). "
            "Use another --out, or remove that directory to start over."
        )


def prepare_shared(
    setup: SearchSetup,
    run_dir: Path,
    task: Task,
    *,
    progress: bool = True,
    backend: str = "loky",
    scheduler: str | None = None,
) -> dict:
    """Dense model, budget checks, sensitivity and latency samples: the once-per-study work."""
    budgets = parse_budgets(setup.budgets)
    space = SearchSpace.from_dict(setup.space)
    dense = dense_model(task, seed=setup.seed, progress=progress)
    dense.model.to(setup.device)
    costs = measure_costs(dense.model, task.example_input, scope=task.cost_modules)
    shared: dict = {
        "device": setup.device,
        "dense": {k: v for k, v in dense.info.items() if k != "path"},
        "dense_digest": weights_digest(dense.model),
        "dense_costs": costs.as_dict(),
    }
    if any(b.kind == "latency" for b in budgets):
        stats = measure_latency(
            dense.model,
            task.example_input.to(setup.device),
            batch_size=setup.latency_batch_size,
            threads=setup.latency_threads,
            repeats=60,
            warmup=10,
        )
        shared["dense_latency_ms"] = stats.median_ms
        shared["dense_latency"] = stats.as_dict()
        costs = costs.with_latency(stats.median_ms)
    _check_dense_is_over(budgets, costs)  # before the slow part: latency samples and sensitivity
    if "dense_latency_ms" in shared:
        samples = load_or_sample(
            run_dir / "latency_samples.csv",
            dense.model,
            task.example_input.to(setup.device),
            batch_size=setup.latency_batch_size,
            threads=setup.latency_threads,
            seed=setup.seed,
        )
        shared["latency_samples"] = samples.to_dict(orient="records")
    shared["sensitivity"] = {}
    if setup.sensitivity and space.sensitivity.enabled:
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
                    dense.model.cpu(),
                    task,
                    criterion=space.sensitivity.criterion,
                    granularity=granularity,
                    grid=grid,
                    val_items=space.sensitivity.val_items,
                    seed=setup.seed,
                    progress=progress,
                    backend=backend,
                    scheduler=scheduler,
                    n_jobs=-1 if backend == "dask" else 1,
                )
            except (
                Exception
            ) as exc:  # an untraceable model has no structured sensitivity; say so and go on
                if granularity == "unstructured":
                    raise
                shared.setdefault("notes", []).append(f"structured sensitivity skipped: {exc}")
                continue
            sens.save(run_dir / "sensitivity" / granularity, tolerance=space.sensitivity.tolerance)
            shared["sensitivity"][granularity] = {
                "dense_metric": sens.dense_metric,
                "rows": sens.to_records(),
                "seconds": round(sens.seconds, 2),
            }
    return shared


def _check_dense_is_over(budgets, costs) -> None:
    for budget in budgets:
        value, limit = costs.of(budget.kind), budget.limit(costs.of(budget.kind))
        if value <= limit:
            raise BudgetError(
                f"The dense model already meets the budget {budget} (it has {value:,.6g}, the limit is {limit:,.6g}); "
                "there is nothing to prune for. Tighten the budget."
            )


def check_feasible(ctx: SearchContext) -> None:
    """Raise when no granularity of the space can meet the budget even with every unit at its cap."""
    reasons = []
    for granularity in ctx.granularities:
        if granularity == "nm":
            from autoprune.policy import LayerPolicy, Policy

            policy = Policy(
                layers={
                    u: LayerPolicy(granularity="nm", nm=ctx.space.nm[0]) for u in ctx.units["nm"]
                }
            )
            if ctx.meets(ctx.estimate(policy)):
                return
            reasons.append("nm: every eligible layer at its N:M pattern is not enough")
            continue
        caps = {u: hi for u, (_, hi) in ctx.bounds[granularity].items()}
        estimates = ctx.estimate(ctx.policy(granularity, caps))
        if ctx.meets(estimates):
            return
        over = ", ".join(
            f"{k} {estimates[k]:,.6g} > {ctx.limits[k]:,.6g}"
            for k in ctx.limits
            if estimates[k] > ctx.limits[k]
        )
        tight = sorted(caps.items(), key=lambda kv: kv[1])[:4]
        reasons.append(
            f"{granularity}: with every unit at its cap, {over}; the tightest caps are "
            + ", ".join(f"{u} {c:.2f}" for u, c in tight)
        )
    raise BudgetError(
        "No policy in the search space can meet the budget. "
        + "; ".join(reasons)
        + ". Raise sensitivity.tolerance or the space's upper amounts, or loosen the budget."
    )


def write_run_json(
    run_dir: Path, setup: SearchSetup, shared: dict, study_name: str, storage_url: str | None
) -> None:
    info = {k: v for k, v in shared.items() if k not in ("sensitivity", "latency_samples")}
    info["sensitivity_seconds"] = {
        g: d["seconds"] for g, d in shared.get("sensitivity", {}).items()
    }
    path = run_dir / "run.json"
    earlier = read_json(path) if path.is_file() else {}
    kept = {
        k: earlier[k] for k in ("search_seconds", "limits") if k in earlier
    }  # from earlier sessions
    write_json(
        path,
        {
            "setup": setup.to_dict(),
            "study_name": study_name,
            "storage": storage_url or "journal:study.journal",
            **info,
            **kept,
        },
    )


def worker_id() -> str:
    """``host:pid`` of this process, recorded on the trials it runs."""
    return f"{socket.gethostname()}:{os.getpid()}"
