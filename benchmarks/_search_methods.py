"""autoprune's own rows: a search under the budget, then the final model, as a user gets it.

``autoprune`` searches the benchmark's space with the sensitivity analysis on;
``autoprune-nosens`` the same with it off (no caps, no seed policies), to show
what the pre-ranking buys. Both start from the benchmark's dense checkpoint
(the task is pinned to it, whatever the seed), run ``trials`` trials in a run
directory under ``runs/`` (an interrupted search resumes there), then
:func:`autoprune.final.finalize` picks the best feasible candidate (``top=1``)
and fine-tunes it for the benchmark's epochs; the row measures the saved final
model reloaded with :func:`autoprune.apply.load_pruned`.

A search that cannot meet the budget (no policy in the space can, or no trial
was feasible) gives an ``n/a`` row that says why.

Example:
    >>> AutopruneSearch("autoprune", sensitivity=True).series
    'search'
"""

from __future__ import annotations

import time

from autoprune._io import read_json
from autoprune.errors import BudgetError, RunError
from benchmarks._method import ALL_KINDS, Method, Outcome


class NotAvailable(BudgetError):
    """The method ran but has no model for this budget (the row says why)."""


class AutopruneSearch(Method):
    series, kinds = "search", ALL_KINDS

    def __init__(self, name: str, *, sensitivity: bool) -> None:
        self.name, self.sensitivity = name, sensitivity
        self.description = (
            "autoprune search, sensitivity analysis on (caps and seed policies)"
            if sensitivity
            else "autoprune search, sensitivity analysis off (no caps, no seed policies)"
        )

    def run_dir(self, ctx, budget, seed: int):
        return ctx.runs_dir / budget.slug / f"{self.name}-seed{seed}"

    def run(self, ctx, budget, seed):
        from autoprune.apply import load_pruned
        from autoprune.final import finalize
        from autoprune.search import SearchOptions, search

        s = ctx.settings
        run_dir = self.run_dir(ctx, budget, seed)
        task = ctx.checkpoint_task()
        result = search(
            task,
            f"{budget.kind}={budget.value:g}",
            space=s.space,
            n_trials=s.trials,
            out=run_dir,
            seed=seed,
            progress=False,
            options=SearchOptions(
                sensitivity=self.sensitivity,
                latency_batch_size=s.latency_batch_size,
                latency_threads=s.latency_threads,
            ),
        )
        start = time.perf_counter()
        try:
            summary = finalize(result, top=1, epochs=s.epochs, progress=False)
        except RunError as exc:
            raise NotAvailable(f"no final model: {exc}") from exc
        finalize_seconds = time.perf_counter() - start
        model = load_pruned(
            run_dir / "final", build_model=task.build_model, example_input=task.example_input
        )
        from autoprune.policy_file import load_policy

        before = ctx.test_metric(
            ctx.prune_only(load_policy(run_dir / "final" / "policy.yaml").policy)
        )
        trials = result.trials
        chosen = trials[trials.number == summary.chosen_trial].iloc[0]
        run = read_json(run_dir / "run.json")
        search_seconds = float(run.get("search_seconds", result.seconds))
        return Outcome(
            model.eval(),
            {
                "trials": int((trials.state == "COMPLETE").sum()),
                "finetuned_trials": int((trials.fidelity == "finetuned").sum()),
                "chosen_trial": int(summary.chosen_trial),
                "choice": f"{chosen.granularity}, {chosen.scope}, {chosen.criterion}, {chosen.schedule}",
                "search_seconds": round(search_seconds, 1),
                "sensitivity_seconds": run.get("sensitivity_seconds", {}),
                "finalize_seconds": round(finalize_seconds, 1),
                "wall_seconds": search_seconds + finalize_seconds,
                "run_dir": str(run_dir),
                "test_metric_before_finetune": before,
            },
        )


SEARCHES: tuple[Method, ...] = (
    AutopruneSearch("autoprune", sensitivity=True),
    AutopruneSearch("autoprune-nosens", sensitivity=False),
)
