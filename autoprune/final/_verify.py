"""Step 3 of the final model: reload it from its saved files, measure it, check every budget.

Parameters, MACs, bytes on disk and latency (median and spread, measured side
by side with the dense model) come from the reloaded files, not from the model
in memory: what is checked is what ships.

Example:
    >>> from autoprune.budgets import parse_budgets
    >>> measured = {"params": 900, "macs": 0, "size": 0, "latency": 0.0}
    >>> [c.met for c in check_budgets(parse_budgets(["params=0.1"]), measured, {"params": 10_000})]
    [True]
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from autoprune.apply import load_pruned
from autoprune.budgets import Budget, measure_costs
from autoprune.final._choose import timed_beside_dense
from autoprune.final._summary import BudgetCheck, DenseRow, FinalRow, LatencyStats


@dataclass(frozen=True)
class Measured:
    """The saved final model and the dense model, measured in the same conditions."""

    final: FinalRow
    dense: DenseRow


def measure_saved(ctx, directory: Path, layers: list[dict]) -> Measured:
    """Reload the final model from ``directory`` and measure it side by side with the dense model."""
    reloaded = load_pruned(
        directory, build_model=ctx.task.build_model, example_input=ctx.example_input
    ).to(ctx.device)
    costs = measure_costs(reloaded, ctx.example_input, scope=ctx.scope)
    latency = timed_beside_dense(ctx, {"final": reloaded})
    final = FinalRow(
        params=costs.params,
        macs=costs.macs,
        bytes=(directory / "model.safetensors").stat().st_size,
        latency=LatencyStats.from_dict(latency["final"]),
        layers=layers,
    )
    dense = DenseRow(
        val_metric=ctx.dense_info["val_metric"],
        test_metric=ctx.dense_info["test_metric"],
        params=ctx.dense_costs.params,
        macs=ctx.dense_costs.macs,
        bytes=_dense_file_bytes(ctx.dense),
        latency=LatencyStats.from_dict(latency["dense"]),
    )
    return Measured(final, dense)


def _dense_file_bytes(dense) -> int:
    from autoprune.artifact import artifact_bytes

    return artifact_bytes(dense.state_dict())


def check_budgets(budgets: list[Budget], measured: dict, reference: dict) -> list[BudgetCheck]:
    """Each budget checked on ``measured`` (kind -> value); ``reference`` holds the dense values.

    A relative latency budget is a promise about the ratio to the dense model, so
    the dense model measured in the same interleaved rounds is its reference (the
    machine's load cancels out).
    """
    checks = []
    for budget in budgets:
        limit = budget.limit(reference[budget.kind])
        value = measured[budget.kind]
        checks.append(BudgetCheck(str(budget), budget.kind, value, limit, value <= limit))
    return checks


def budget_checks(ctx, measured: Measured, extra: tuple[Budget, ...] = ()) -> list[BudgetCheck]:
    """The run's budgets (then ``extra`` ones, e.g. a pick's tighter budget) checked on the saved final model."""
    from autoprune.budgets import parse_budgets

    final = measured.final
    values = {
        "params": final.params,
        "macs": final.macs,
        "size": final.bytes,
        "latency": final.latency.median_ms,
    }
    budgets = parse_budgets(ctx.setup.budgets) + list(extra)
    reference = {b.kind: ctx.dense_costs.of(b.kind) for b in budgets if b.kind != "latency"}
    reference["latency"] = measured.dense.latency.median_ms
    return check_budgets(budgets, values, reference)
