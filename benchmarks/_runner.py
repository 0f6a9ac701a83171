"""Cells of the comparison: one (task, budget, method, seed) each, one JSON file each, resumable.

A cell's result is written atomically to
``raw/<task>/<budget slug or "fixed">/<method>/seed<k>.json`` with its status:
``ok`` (the measurements of both regimes: the one-shot test metric, the test
metric after the shared recovery, the costs, the wall times; a search's best
one-shot candidate, when it is not its pick for recovery, in ``oneshot_pick``), ``n/a`` (the
method cannot meet this budget, and why) or ``failed`` (an exception, kept so
the table shows it). Every row carries the commit it ran at. A re-run skips
``ok`` and ``n/a`` cells and retries failed ones; a cell written with other
settings (epochs, learning rate, trials, ...) stops the run instead of being
mixed into the tables.

Example:
    >>> from pathlib import Path
    >>> Cell("fashion-cnn", "params=0.25", "lamp", 1).path(Path("raw")).as_posix()
    'raw/fashion-cnn/params0.25/lamp/seed1.json'
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import torch

from autoprune._io import read_json
from autoprune.budgets import parse_budget
from autoprune.errors import AutopruneError, BudgetError
from autoprune.introspect import torch_threads
from benchmarks._common import code_commit, versions
from benchmarks._context import BenchTask, RunSettings
from benchmarks.methods import get_method

DONE = ("ok", "n/a")


class BenchError(AutopruneError):
    """The benchmark cannot run as asked (unknown task or method, results made with other settings)."""


@dataclass(frozen=True)
class Cell:
    """One row of one seed: a method on a task under a budget (None for the fixed reference rows)."""

    task: str
    budget: str | None
    method: str
    seed: int

    @property
    def slug(self) -> str:
        return "fixed" if self.budget is None else parse_budget(self.budget).slug

    def path(self, raw_dir: Path) -> Path:
        return Path(raw_dir) / self.task / self.slug / self.method / f"seed{self.seed}.json"

    def __str__(self) -> str:
        return f"{self.task} {self.budget or 'reference'} {self.method} seed {self.seed}"


def plan_cells(task: str, budgets, methods, seeds) -> list[list[Cell]]:
    """Cells in running order, one list per seed (the dense control first: its recovery depends on the seed)."""
    passes = []
    for seed in seeds:
        fixed = [Cell(task, None, m, seed) for m in methods if get_method(m).fixed]
        matched = [
            Cell(task, b, m, seed) for b in budgets for m in methods if not get_method(m).fixed
        ]
        passes.append(fixed + matched)
    return passes


def finished(path: Path) -> dict | None:
    """The stored row of a cell when it is done (ok or n/a), else None."""
    if not path.is_file():
        return None
    row = read_json(path)
    return row if row.get("status") in DONE else None


def _finished_rows(raw_dir: Path, task: str):
    """(path, row) of every finished cell of ``task``."""
    for path in sorted((Path(raw_dir) / task).glob("*/*/seed*.json")):
        row = finished(path)
        if row is not None:
            yield path, row


def check_settings(raw_dir: Path, task: str, settings: RunSettings) -> None:
    """Refuse to mix: every finished cell of ``task`` must have been made with today's settings."""
    for path, row in _finished_rows(raw_dir, task):
        wanted = settings.relevant(search=row.get("series") == "search")
        stored = {k: row.get("settings", {}).get(k) for k in wanted}
        if stored != wanted:
            changed = ", ".join(
                f"{k} {stored[k]!r} -> {wanted[k]!r}" for k in wanted if stored[k] != wanted[k]
            )
            raise BenchError(
                f"{path} was made with other settings ({changed}). Use another --out, "
                f"or delete {Path(raw_dir) / task} to start this task over."
            )


def check_dense(raw_dir: Path, task: str, digest: str) -> None:
    """Refuse to mix: every finished cell of ``task`` that records its dense checkpoint must have started from this one.

    A dense model trained again with another thread count or on another machine has
    other weights (the same seed, sums in another order): rows made from it are not comparable.
    """
    for path, row in _finished_rows(raw_dir, task):
        if row.get("dense_digest") not in (None, digest):
            raise BenchError(
                f"{path} started from another dense checkpoint (weights digest "
                f"{row['dense_digest']}, this run's {digest}). Put that checkpoint back in the run's "
                f"dense/ folder, use another --out, or delete {Path(raw_dir) / task} to start this task over."
            )


def run_cell(ctx: BenchTask, cell: Cell, *, threads: int | None = None) -> dict:
    """Run one cell and return its row (status ok, n/a or failed); never raises for a method's failure.

    ``cell_seconds``: what the cell took on this machine, everything included (the
    run's own time; ``wall_seconds`` is the method's, with what it was charged).

    ``threads``: torch's intra-op threads for the cell (restored afterwards), so
    that no cell inherits a thread setting another cell left behind.
    """
    threads = threads or torch.get_num_threads()
    start = time.perf_counter()
    with torch_threads(threads):
        row = _run_cell(ctx, cell)
    return {**row, "threads": threads, "cell_seconds": round(time.perf_counter() - start, 2)}


def _run_cell(ctx: BenchTask, cell: Cell) -> dict:
    method = get_method(cell.method)
    budget = parse_budget(cell.budget) if cell.budget else None
    row = {
        "task": cell.task,
        "budget": cell.budget,
        "kind": budget.kind if budget else None,
        "budget_value": budget.value if budget else None,
        "method": method.name,
        "series": method.series,
        "seed": cell.seed,
        "metric": ctx.task.metric_name,
        "settings": ctx.settings.relevant(search=method.series == "search"),
        "dense_digest": ctx.dense_digest,
        "versions": versions(),
        "commit": code_commit(),
    }
    reason = method.unsupported(ctx, budget)
    if reason:
        return {**row, "status": "n/a", "reason": reason}
    try:
        row.update(_regimes(ctx, method, budget, cell.seed))
    except BudgetError as exc:
        return {
            **row,
            "status": "n/a",
            "reason": f"cannot meet {budget}: {exc}" if budget else str(exc),
        }
    except (
        Exception
    ) as exc:  # one broken method must not stop a long run; the row says what happened
        return {
            **row,
            "status": "failed",
            "reason": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(limit=8),
        }
    row["status"] = "ok"
    if budget is not None:
        row["met"] = all(
            in_regime(row, r)["fractions"][budget.kind] <= budget.value + 1e-12
            for r in ("one-shot", "recovery")
        )
    return row


def _regimes(ctx: BenchTask, method, budget, seed: int) -> dict:
    """Prune with the method, then the one-shot step and its measures, then the shared recovery.

    A method that names another model for the one-shot regime (a search's best
    one-shot candidate) has it measured and tested the same way, in ``oneshot_pick``.
    """
    start = time.perf_counter()
    outcome = method.run(ctx, budget, seed)
    ran = time.perf_counter() - start
    model, info = outcome.model, dict(outcome.info)
    start = time.perf_counter()
    models = [m for m in (model, outcome.oneshot_model) if m is not None]
    if not method.fixed:  # the dense control keeps the statistics it was trained with
        for each in models:
            ctx.recalibrate(each, seed)
    # the method's own time (a search times itself: sensitivity charge included), the one-shot step too
    seconds = float(info.pop("wall_seconds", ran)) + time.perf_counter() - start
    seconds += float(info.pop("charged_seconds", 0.0))  # a shared match found by an earlier seed
    asked = method.structured or method.fixed or (budget is not None and budget.kind == "latency")
    latency = True if asked else None  # None: when structurally smaller
    oneshot_pick = {}
    if outcome.oneshot_model is not None:
        oneshot_pick = {
            **ctx.measure(outcome.oneshot_model, latency=latency),
            **outcome.oneshot_info,
            "oneshot_metric": ctx.test_metric(outcome.oneshot_model),
        }
    measured = ctx.measure(model, latency=latency)
    oneshot = ctx.test_metric(model)
    log = ctx.recover(model, seed)
    recovered = ctx.test_metric(model)
    after = ctx.measure(model, latency=False)
    return {
        **measured,
        **info,
        "oneshot_metric": oneshot,
        "recovered_metric": recovered,
        "params_after_recovery": after["params"],
        "wall_seconds": round(seconds, 2),
        "recovery_seconds": round(log.seconds, 2),
        "recovery_steps": log.steps,
        **({"oneshot_pick": oneshot_pick} if oneshot_pick else {}),
    }


def in_regime(row: dict, regime: str) -> dict:
    """The row as the ``regime`` table reads it: a separate one-shot pick replaces its fields there.

    Example:
        >>> row = {"oneshot_metric": 0.5, "params": 9, "oneshot_pick": {"oneshot_metric": 0.6, "params": 8}}
        >>> in_regime(row, "one-shot")["params"], in_regime(row, "recovery")["params"]
        (8, 9)
    """
    if regime == "one-shot" and row.get("oneshot_pick"):
        return {**row, **row["oneshot_pick"]}
    return row
