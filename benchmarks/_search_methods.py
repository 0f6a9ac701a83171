"""autoprune's own rows: the public search under the budget, then its pick, given the shared regimes.

``autoprune`` calls the public API as a user would: ``autoprune.search(task,
budget, space=..., n_trials=..., out=..., seed=..., options=SearchOptions(...))``
then ``autoprune.finalize(result, top=1, epochs=0)``: the search's own pick,
pruned from the dense checkpoint without its final fine-tune. The runner then
gives it the same one-shot step and the same recovery as every baseline, so a
row compares allocations, not training budgets. The one-shot regime reads the
search's best one-shot candidate instead when that is another trial (its
pick is made after recovery): ``autoprune.final.pick(result, trial=N,
epochs=0)``, the confirmed candidate with the best validation metric that
meets every budget once saved and measured (``autoprune pick RUN --trial N
--epochs 0`` on the command line). ``autoprune-nosens`` is the
same search without the sensitivity analysis (no caps, no seed policies).

Costs: the search's wall time (its sensitivity analysis included) plus the
final pick and the one-shot pick. The analysis is cached per (task, seed) in the benchmark's own
cache (``runs/<task>/cache``); a search that found it cached is charged the
seconds the first search of that seed spent on it (``sensitivity_charged``).

``trials`` counts the candidates the search completed, ``recovered`` the
recovery trials it spent on the best of them.

Which trial won, and what it was: ``provenance`` from the run's trials table
when it has that column (``seed``, ``startup`` or ``sampler``), else a seed
policy when its ``seed`` column names one, a start-up sample among the first
:data:`STARTUP_TRIALS` trials, a sampler proposal after them.

Example:
    >>> AutopruneSearch("autoprune", sensitivity=True).series
    'search'
    >>> provenance({"number": 3, "seed": "global-l1"}), provenance({"number": 9, "seed": ""})
    ('seed', 'sampler')
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from pathlib import Path

from autoprune._io import read_json, write_json
from autoprune.errors import BudgetError, RunError
from benchmarks._method import ALL_KINDS, Method, Outcome

STARTUP_TRIALS = 8  # the sampler's start-up trials (TPE's n_startup_trials in the search)


class NotAvailable(BudgetError):
    """The method ran but has no model for this budget (the row says why)."""


def _blank(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value == ""


def provenance(row: dict) -> str:
    """Where a trial came from: ``seed``, ``startup`` or ``sampler`` (see the module docstring)."""
    if not _blank(row.get("provenance")):
        return str(row["provenance"])
    if not _blank(row.get("seed")):
        return "seed"
    return "startup" if int(row["number"]) < STARTUP_TRIALS else "sampler"


@contextlib.contextmanager
def _cache_dir(path):
    """The block runs with autoprune's cache (sensitivity points) in ``path``."""
    before = os.environ.get("AUTOPRUNE_CACHE_DIR")
    os.environ["AUTOPRUNE_CACHE_DIR"] = str(path)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("AUTOPRUNE_CACHE_DIR", None)
        else:
            os.environ["AUTOPRUNE_CACHE_DIR"] = before


def _sensitivity_seconds(run: dict) -> float:
    value = run.get("sensitivity_seconds") or {}
    return float(sum(value.values()) if isinstance(value, dict) else value)


class AutopruneSearch(Method):
    series, kinds = "search", ALL_KINDS

    def __init__(
        self,
        name: str,
        *,
        sensitivity: bool,
        changes: dict | None = None,
        description: str = "autoprune.search then finalize(top=1, epochs=0): the search's pick, "
        "given the shared regimes",
    ) -> None:
        self.name, self.sensitivity, self.description = name, sensitivity, description
        self.changes = dict(changes or {})

    def space(self, name: str, *, recovery_epochs: float | None = None):
        """The search space this method searches: the preset's, with this variant's changes
        (and ``recovery_epochs`` for the search's recovery when given)."""
        if not self.changes and recovery_epochs is None:
            return name
        from autoprune.search import load_space

        data = {**load_space(name).to_dict(), **self.changes}
        if recovery_epochs is not None:
            data["recovery"] = {**data["recovery"], "epochs": recovery_epochs}
        return data

    def run_dir(self, ctx, budget, seed: int):
        return ctx.runs_dir / budget.slug / f"{self.name}-seed{seed}"

    def _charge(self, ctx, seed: int, spent: float) -> float:
        """The sensitivity seconds this seed's analysis cost when it was computed (recorded once)."""
        ledger = ctx.runs_dir / f"sensitivity-seed{seed}.json"
        known = read_json(ledger) if ledger.is_file() else {}
        if spent > float(known.get("seconds", 0.0)):
            known = {"seconds": round(spent, 2)}
            write_json(ledger, known)
        return float(known.get("seconds", 0.0))

    def run(self, ctx, budget, seed):
        import autoprune

        s = ctx.settings
        run_dir = self.run_dir(ctx, budget, seed)
        task = ctx.checkpoint_task()
        start = time.perf_counter()
        with _cache_dir(ctx.runs_dir / "cache"):
            result = autoprune.search(
                task,
                f"{budget.kind}={budget.value:g}",
                space=self.space(s.space, recovery_epochs=s.search_recovery_epochs),
                n_trials=s.trials,
                out=run_dir,
                seed=seed,
                progress=False,
                options=autoprune.SearchOptions(
                    sensitivity=self.sensitivity,
                    latency_batch_size=s.latency_batch_size,
                    latency_threads=s.latency_threads,
                ),
            )
            try:
                summary = autoprune.finalize(result, top=1, epochs=0, progress=False)
            except RunError as exc:
                raise NotAvailable(f"no final model: {exc}") from exc
            oneshot = _oneshot_pick(result, summary.chosen_trial, run_dir / "oneshot")
        seconds = time.perf_counter() - start
        model = _load(run_dir / "final", task)
        run = read_json(run_dir / "run.json")
        spent = _sensitivity_seconds(run)
        charged = self._charge(ctx, seed, spent) if self.sensitivity else 0.0
        trials = result.trials
        done = trials[trials.state == "COMPLETE"]
        return Outcome(
            model,
            {
                "trials": int(done.recover_of.isna().sum()),  # candidates, not recovery trials
                "recovered": int(done.recover_of.notna().sum()),
                **trial_info(trials, summary.chosen_trial),
                "narrowed": narrowed_by(summary),
                "search_seconds": round(float(run.get("search_seconds", seconds)), 1),
                "sensitivity_seconds": round(spent, 1),
                "sensitivity_charged": round(charged, 1),
                "wall_seconds": seconds + max(0.0, charged - spent),
                "run_dir": str(run_dir),
            },
            oneshot_model=None if oneshot is None else _load(oneshot.out, task),
            oneshot_info={}
            if oneshot is None
            else {**trial_info(trials, oneshot.trial), "narrowed": 0.0},  # picked as searched
        )


def _load(directory, task):
    from autoprune.apply import load_pruned

    model = load_pruned(directory, build_model=task.build_model, example_input=task.example_input)
    return model.eval()


def narrowed_by(summary) -> float:
    """How much the final step narrowed the pick's kept widths to measure under a latency budget (0: not)."""
    rows = summary.front_latency or []
    return next((r.tightened for r in rows if r.number == summary.chosen_trial), 0.0)


def trial_info(trials, number: int) -> dict:
    """What the rows record about trial ``number``: its number, provenance, seed policy, choices."""
    chosen = trials[trials.number == number].iloc[0].to_dict()
    return {
        "chosen_trial": int(number),
        "provenance": provenance(chosen),
        "chosen_seed_policy": "" if _blank(chosen.get("seed")) else str(chosen["seed"]),
        "choice": ", ".join(
            str(chosen.get(k, "?"))
            for k in ("granularity", "scope", "criterion", "schedule", "blocks_removed")
            if not _blank(chosen.get(k))
        ),
    }


def oneshot_order(trials) -> list[int]:
    """Confirmed candidates within the budget, best one-shot validation metric first (cheaper on ties).

    Example:
        >>> import pandas as pd
        >>> trials = pd.DataFrame({"number": [0, 1, 2, 3], "fidelity": ["confirmed", "confirmed", "scored", "recovered"],
        ...     "feasible": [True, True, True, True], "val_metric": [0.7, 0.8, None, 0.9], "cost": [1.0, 1.0, 1.0, 1.0]})
        >>> oneshot_order(trials)
        [1, 0]
    """
    pool = trials[
        (trials.fidelity == "confirmed") & (trials.feasible == True) & trials.val_metric.notna()  # noqa: E712
    ]
    ranked = pool.sort_values(["val_metric", "cost"], ascending=[False, True], kind="stable")
    return [int(n) for n in ranked.number]


def _oneshot_pick(result, chosen: int, out: Path, tries: int = 3):
    """The best confirmed one-shot candidate as ``autoprune pick RUN --trial N --epochs 0`` makes it.

    None when it is the search's own pick (that model serves both regimes) or
    when none of the best ``tries`` meets every budget once saved and measured
    (a latency budget is estimated during the search and measured only here).
    """
    from autoprune.final import pick

    for number in oneshot_order(result.trials)[:tries]:
        if number == chosen:
            return None
        made = pick(result, trial=number, epochs=0, out=out, progress=False)
        if all(check.met for check in made.summary.budget_checks):
            return made
    return None


SEARCHES: tuple[Method, ...] = (
    AutopruneSearch("autoprune", sensitivity=True),
    AutopruneSearch(
        "autoprune-nosens",
        sensitivity=False,
        description="the same search with the sensitivity analysis off (no caps, no seed policies)",
    ),
    AutopruneSearch(
        "autoprune-depth",
        sensitivity=True,
        changes={"depth": True},
        description="the same search with depth in the space: whole blocks removed, jointly with widths",
    ),
    AutopruneSearch(
        "autoprune-r8",
        sensitivity=True,
        changes={"round_to": 8},
        description="the same search with kept channels, heads and neurons rounded to multiples of 8",
    ),
)
