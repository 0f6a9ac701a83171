"""Is the cheap score faithful? Rank correlation of the search's score with the accuracy after recovery.

For each task, ``n`` candidates at the budget (the heuristics first, then
uniform draws within the sensitivity caps, each fitted to the budget exactly)
are scored the way the search scores them (distance of the outputs from the
dense model's after BatchNorm re-estimation: no training) and measured one-shot
on the validation split; then each is recovered the way the search recovers its
best candidates (distillation from the dense model, the space's recovery
epochs) and measured again. Spearman's rank correlation tells whether ranking by
the cheap score ranks by what a user gets after recovery.

    python -m benchmarks fidelity [--out results/benchmarks/fidelity]

Example:
    >>> spearman([1, 2, 3, 4], [10, 20, 40, 30])
    0.8
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import optuna
import pandas as pd

from autoprune._io import write_text
from benchmarks._common import code_commit, markdown_table

CASES = (
    # task, budget, granularity, candidates
    ("fashion-cnn", "params=0.05", "unstructured", 16),
    ("fashion-resnet", "macs=0.25", "structured", 16),
)


def spearman(a, b) -> float:
    """Spearman's rank correlation (ties get their mean rank)."""
    ranks = pd.DataFrame({"a": a, "b": b}).rank()
    return float(round(ranks["a"].corr(ranks["b"]), 6))


def _context(task_name: str, budget: str, granularity: str, n: int):
    from autoprune.search import SearchSetup, load_space
    from autoprune.search._context import SearchContext
    from autoprune.search._prepare import prepare_study
    from autoprune.tasks import get_task

    space = load_space("default").to_dict()
    space.update(granularities=[granularity], levels=[1.0])
    setup = SearchSetup(task=task_name, budgets=[budget], space=space, n_trials=n)
    task = get_task(task_name)
    prepared = prepare_study(setup, Path(tempfile.mkdtemp()), task, progress=False)
    return SearchContext.load(setup, prepared, task=task)


def measure_case(task_name: str, budget: str, granularity: str, n: int) -> pd.DataFrame:
    """One row per candidate: its cheap score, one-shot and recovered validation metric, seconds."""
    from autoprune.search._candidate import suggest
    from autoprune.search._evolution import evolution_space, make_sampler
    from autoprune.search._scoring import CandidateScorer
    from autoprune.search._seeds import seed_trials
    from autoprune.training import evaluate, finetune_policy

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    ctx = _context(task_name, budget, granularity, n)
    scorer = CandidateScorer(ctx)
    study = optuna.create_study(
        directions=["maximize", "minimize"], sampler=make_sampler(evolution_space(ctx), 0, 0)
    )
    for params, name in seed_trials(ctx)[:n]:
        study.enqueue_trial(params, user_attrs={"seed": name})
    rows = []
    for _ in range(n):
        trial = study.ask()
        candidate = suggest(trial, ctx)
        start = time.perf_counter()
        built = scorer.build(candidate.policy)
        distance = built.distance(items=ctx.space.fitness.confirm)
        one_shot = scorer.validation_metric(built, items=ctx.space.fitness.val_items)
        scored = time.perf_counter() - start
        start = time.perf_counter()
        outcome = finetune_policy(ctx.fresh_dense(), candidate.policy, ctx.task, dense=ctx.dense)
        recovered = evaluate(outcome.model, ctx.task.val_data, ctx.task).metric
        rows.append(
            {
                "task": task_name,
                "budget": budget,
                "candidate": trial.user_attrs.get("seed") or f"draw {trial.number}",
                "distance": distance,
                "one_shot_metric": one_shot,
                "recovered_metric": recovered,
                "score_seconds": round(scored, 2),
                "recovery_seconds": round(time.perf_counter() - start, 2),
            }
        )
        cost = built.estimates[ctx.primary.kind] / ctx.limits[ctx.primary.kind]
        study.tell(trial, [-distance, cost])
    return pd.DataFrame(rows)


def summarise(frame: pd.DataFrame) -> list[dict]:
    """Per task: Spearman of the score (minus the distance) and of the one-shot metric with the recovered one."""
    out = []
    for (task, budget), rows in frame.groupby(["task", "budget"], sort=False):
        out.append(
            {
                "task": task,
                "budget": budget,
                "candidates": len(rows),
                "spearman(score, recovered)": spearman(-rows.distance, rows.recovered_metric),
                "spearman(one-shot, recovered)": spearman(
                    rows.one_shot_metric, rows.recovered_metric
                ),
                "score s/candidate": round(float(rows.score_seconds.mean()), 2),
                "recovery s/candidate": round(float(rows.recovery_seconds.mean()), 2),
            }
        )
    return out


def run(out: str | Path = "results/benchmarks/fidelity", cases=CASES) -> Path:
    """Measure every case, write ``fidelity.csv`` and ``fidelity.md``; returns the markdown path."""
    out = Path(out)
    frame = pd.concat([measure_case(*case) for case in cases], ignore_index=True)
    write_text(out / "fidelity.csv", frame.to_csv(index=False))
    lines = [
        "# Is the cheap score faithful?",
        "",
        f"Commit `{code_commit()}`; `python -m benchmarks fidelity`. Each candidate is scored as the "
        "search scores it (distance of its outputs from the dense model's, no training), measured "
        "one-shot, then recovered as the search recovers its best candidates (distillation, the "
        "default space's recovery epochs) and measured again on the validation split.",
        "",
        markdown_table(summarise(frame)),
        "",
        "Every candidate: [`fidelity.csv`](fidelity.csv).",
        "",
    ]
    path = out / "fidelity.md"
    write_text(path, "\n".join(lines))
    return path
