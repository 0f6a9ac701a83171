"""The final model: fine-tune the shortlist fully, choose on validation, test once, save.

1. the front's candidates are shortlisted by the selection rule;
2. each is pruned from the dense model and fine-tuned for the space's
   ``final_epochs``; the rule chooses among them on their *validation* metric.
   A global structured ranking is first pinned to the channel ratios it reaches
   on the dense model (:func:`~autoprune.pipeline.pin_structure`): the shape
   whose costs were checked is the shape that gets fine-tuned and shipped;
3. only then is the test split evaluated, once, for the chosen model;
4. the policy file and the weights are written to a staging directory of this
   process's own and renamed to ``final/`` under a lock (a previous ``final/`` is
   kept as ``final-<time>/``), the model is reloaded from those
   files and measured again: parameters, MACs, bytes on disk and latency
   (median and spread, side by side with the dense model), each budget checked.

Everything measured goes to ``final/final.json``; the report reads it.

Example:
    >>> # finalize("results/runs/fashion-cnn-params0.1", rule="best", top=3)
"""

from __future__ import annotations

import datetime
import json
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd

from autoprune._io import read_json, write_json, write_text
from autoprune.apply import builder_path, load_pruned, save_pruned
from autoprune.budgets import measure_costs, parse_budgets
from autoprune.errors import RunError
from autoprune.introspect import side_by_side_latency
from autoprune.pipeline import PruneOutcome, pin_structure, prune_and_finetune
from autoprune.policy import Policy
from autoprune.policy_file import PolicyDocument, fingerprint, provenance
from autoprune.report._pick import choose, shortlist
from autoprune.search._lock import FileLock
from autoprune.training import evaluate


def export_tables(run_dir: Path, study) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write ``trials.csv`` and ``front.csv`` from the study; returns both tables."""
    from autoprune.search import front_of, trials_frame

    trials = trials_frame(study)
    front = front_of(trials)
    write_text(run_dir / "trials.csv", trials.to_csv(index=False))
    write_text(run_dir / "front.csv", front.to_csv(index=False))
    return trials, front


def _keep_previous(final_dir: Path) -> Path | None:
    if not final_dir.exists():
        return None
    stamp = datetime.datetime.fromtimestamp(final_dir.stat().st_mtime).strftime("%Y%m%d-%H%M%S")
    kept = final_dir.with_name(f"final-{stamp}")
    n = 1
    while kept.exists():
        kept = final_dir.with_name(f"final-{stamp}-{n}")
        n += 1
    final_dir.rename(kept)
    return kept


def finalize(
    result_or_run_dir,
    *,
    rule: str = "best",
    top: int = 3,
    tolerance: float = 0.005,
    epochs: float | None = None,
    progress: bool = True,
) -> dict:
    """Pick, fine-tune fully, test once, save and re-measure the final model (see the module docstring)."""
    from autoprune._validation import check_positive_int

    check_positive_int("top", top, error=RunError)
    from autoprune.search import SearchResult, open_run

    result = (
        result_or_run_dir
        if isinstance(result_or_run_dir, SearchResult)
        else open_run(result_or_run_dir)
    )
    run_dir, ctx = Path(result.run_dir), result.context
    trials, front = export_tables(run_dir, result.study)
    if trials.empty or not (trials.state == "COMPLETE").any():
        raise RunError(f"{run_dir} has no finished trial yet: resume the search to get one.")
    if front.empty:
        raise RunError(
            f"{run_dir} has no feasible fine-tuned trial: nothing to finalize. "
            "Run more trials or loosen the budget; the report can still show the trials."
        )
    epochs = ctx.space.finetune.final_epochs if epochs is None else epochs
    policies = {
        int(row.number): Policy.from_dict(json.loads(row.policy)) for row in front.itertuples()
    }
    shapes: dict[int, PruneOutcome] = {}

    def shape_of(number: int) -> PruneOutcome:
        """The candidate pruned from the dense model without fine-tuning: the shape the budgets saw."""
        if number not in shapes:
            shapes[number] = prune_and_finetune(
                ctx.fresh_dense(), policies[number], ctx.task, epochs=0
            )
        return shapes[number]

    front_latency = None
    latency_budget = next(
        (b for b in parse_budgets(ctx.setup.budgets) if b.kind == "latency"), None
    )
    pool = front
    if latency_budget is not None:
        # the search only estimated latency: measure the front now and pick among what really meets it
        shaped = {number: shape_of(number).model for number in policies}
        front_latency = measure_front_latency(ctx, front, shaped, latency_budget)
        meeting = [r["number"] for r in front_latency if r["met"]]
        if meeting:
            pool = front[front["number"].isin(meeting)]
    candidates = shortlist(pool, rule, top=top, tolerance=tolerance)
    start = time.perf_counter()
    tuned, models = [], {}
    for row in candidates.itertuples():
        number = int(row.number)
        policy = policies[number]
        if policy.ranks_channels_globally:
            # fine-tuning longer must not move a global ranking to a shape the budgets never saw
            policy = pin_structure(policy, shape_of(number).layers)
        policy = replace(policy, finetune=replace(policy.finetune, epochs=epochs))
        outcome = prune_and_finetune(ctx.fresh_dense(), policy, ctx.task, progress=progress)
        val = evaluate(outcome.model, ctx.task.val_data, ctx.task).metric
        tuned.append(
            {
                "number": int(row.number),
                "val_metric": val,
                "search_val_metric": float(row.val_metric),
                "cost": float(row.cost),
                "pinned": policies[number].ranks_channels_globally,
                "policy": policy,
            }
        )
        models[number] = outcome
    frame = pd.DataFrame(tuned)
    chosen = choose(frame[["number", "val_metric", "cost"]], rule, tolerance=tolerance)
    final = models[chosen]
    policy = next(t["policy"] for t in tuned if t["number"] == chosen)
    test = evaluate(
        final.model, ctx.task.test_data, ctx.task
    )  # the one and only look at the test split
    final_dir = run_dir / "final"
    # written whole in a staging directory of this process's own, then renamed: a crash never
    # leaves half a final model, and two finalizes of one run never share (or delete) a staging
    staging = staging_dir(run_dir)
    setup = ctx.setup
    document = PolicyDocument(
        policy,
        fingerprint=fingerprint(ctx.dense),
        provenance=provenance(
            task=setup.task,
            task_options=setup.task_options,
            budget=setup.budgets,
            seed=setup.seed,
            trial=chosen,
            rule=rule,
            builder=builder_path(ctx.task.build_model),
            input_shape=list(ctx.example_input.shape),
            input_dtype=str(ctx.example_input.dtype).removeprefix("torch."),
            device=str(ctx.device),
            latency_batch_size=setup.latency_batch_size,
            latency_threads=setup.latency_threads,
        ),
        results={
            "val_metric": next(t["val_metric"] for t in tuned if t["number"] == chosen),
            "test_metric": test.metric,
        },
    )
    save_pruned(final.model, staging, document, history=final.history)
    reloaded = load_pruned(
        staging, build_model=ctx.task.build_model, example_input=ctx.example_input
    ).to(ctx.device)
    costs = measure_costs(reloaded, ctx.example_input, scope=ctx.scope)
    on_disk = (staging / "model.safetensors").stat().st_size
    latency = side_by_side_latency(
        {"dense": ctx.dense, "final": reloaded},
        ctx.example_input,
        batch_size=setup.latency_batch_size,
        threads=setup.latency_threads,
    )
    measured = {
        "params": costs.params,
        "macs": costs.macs,
        "size": on_disk,
        "latency": latency["final"]["median_ms"],
    }
    dense_costs = ctx.dense_costs
    dense_latency = latency["dense"]["median_ms"]
    checks = []
    for budget in parse_budgets(setup.budgets):
        # a relative latency budget is a promise about the ratio to the dense model, so the dense
        # model measured in the same interleaved rounds is the reference (the machine's load cancels out)
        reference = dense_latency if budget.kind == "latency" else dense_costs.of(budget.kind)
        limit = budget.limit(reference)
        checks.append(
            {
                "budget": str(budget),
                "kind": budget.kind,
                "value": measured[budget.kind],
                "limit": limit,
                "met": measured[budget.kind] <= limit,
            }
        )
    summary = {
        "chosen_trial": chosen,
        "front_latency": front_latency,
        "rule": rule,
        "tolerance": tolerance,
        "final_epochs": epochs,
        "candidates": [{k: v for k, v in t.items() if k != "policy"} for t in tuned],
        "val_metric": next(t["val_metric"] for t in tuned if t["number"] == chosen),
        "test_metric": test.metric,
        "test_loss": test.loss,
        "dense": {
            "val_metric": ctx.dense_info["val_metric"],
            "test_metric": ctx.dense_info["test_metric"],
            "params": dense_costs.params,
            "macs": dense_costs.macs,
            "bytes": _dense_file_bytes(ctx),
            "latency": latency["dense"],
        },
        "final": {
            "params": costs.params,
            "macs": costs.macs,
            "bytes": on_disk,
            "latency": latency["final"],
            "layers": final.layers,
        },
        "budget_checks": checks,
        "finalize_seconds": round(time.perf_counter() - start, 1),
        "previous_final": None,
        "metric": ctx.task.metric_name,
    }
    write_json(staging / "final.json", summary)
    with FileLock(run_dir / ".final.lock"):  # one publisher at a time: final/ is always whole
        previous = _keep_previous(final_dir)
        staging.rename(final_dir)
        if previous:
            summary["previous_final"] = str(previous)
            write_json(final_dir / "final.json", summary)
    return summary


STAGING_PREFIX = ".final-"


def staging_dir(run_dir: Path) -> Path:
    """A new, empty staging directory for this process's final model (stale ones of dead processes go)."""
    import os
    import shutil
    import tempfile

    from autoprune._io import pid_alive

    for old in run_dir.glob(STAGING_PREFIX + "*"):
        pid = old.name[len(STAGING_PREFIX) :].partition("-")[0]
        if old.is_dir() and pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=run_dir))


def measure_front_latency(ctx, front: pd.DataFrame, models: dict, budget) -> list[dict]:
    """Measured latency of every front candidate (``models``: number -> pruned model), side by side with the dense model.

    A relative budget is checked against the dense model measured in the same rounds.
    """
    models = {"dense": ctx.dense, **models}
    setup = ctx.setup
    latency = side_by_side_latency(
        models,
        ctx.example_input,
        batch_size=setup.latency_batch_size,
        threads=setup.latency_threads,
        rounds=3,
    )
    dense = latency["dense"]["median_ms"]
    limit = budget.limit(dense)
    rows = []
    for row in front.itertuples():
        measured = latency[int(row.number)]
        rows.append(
            {
                "number": int(row.number),
                "estimated_ms": float(row.latency_ms),
                "measured_ms": measured["median_ms"],
                "measured_vs_dense": measured["median_ms"] / dense,
                "limit_ms": limit,
                "met": measured["median_ms"] <= limit,
            }
        )
    return rows


def _dense_file_bytes(ctx) -> int:
    from autoprune.artifact import artifact_bytes

    return artifact_bytes(ctx.dense.state_dict())


def read_final(run_dir: Path) -> dict | None:
    path = Path(run_dir) / "final" / "final.json"
    return read_json(path) if path.is_file() else None
