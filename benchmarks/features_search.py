"""What input features in the search space buy: the same search with ``inputs: true`` and without.

On ``breast-cancer-mlp`` (30 named features) at each parameter budget, over
several seeds (the dense MLP's initialisation and the search's streams; the
split is fixed), the search runs twice with the same space, trials and final
step: once with ``inputs: true`` (a trial also chooses how many of the most
important input features to keep) and once without. Each run's final model is
tested once on the test split. Test accuracy, kept features, the final model's
parameters and the wall time of search plus final step (the dense model is
trained once per seed beforehand, outside both) are recorded; Welch's t-test of
the two test accuracies says ``ahead``, ``level`` or ``behind``.

    python -m benchmarks features-search [--out results/benchmarks/features_search]

Example:
    >>> [name for name, _ in VARIANTS]
    ['inputs searched', 'all inputs kept']
"""

from __future__ import annotations

import tempfile
import time
import warnings
from pathlib import Path

import pandas as pd

from autoprune._io import write_text
from autoprune.introspect._latency import torch_threads
from benchmarks._common import code_commit, markdown_table, versions
from benchmarks._stats import compare, summarize

BUDGETS = ("params=0.3", "params=0.1", "params=0.05")
SEEDS = tuple(range(10))
TRIALS = 24
VARIANTS = (
    ("inputs searched", True),
    ("all inputs kept", False),
)


def space(inputs: bool) -> dict:
    """The ``quick`` space at the budget itself, both granularities, with or without input features."""
    from autoprune.search import load_space

    data = load_space("quick").to_dict()
    data.update(inputs=inputs, levels=[1.0], granularities=["structured", "unstructured"])
    return data


def _one(task, budget: str, inputs: bool, seed: int, out: Path) -> dict:
    from autoprune.final import finalize
    from autoprune.search import search

    start = time.perf_counter()
    result = search(
        task, budget, space=space(inputs), n_trials=TRIALS, out=out, seed=seed, progress=False
    )
    summary = finalize(result, progress=False)
    return {
        "test_accuracy": round(summary.test_metric, 6),
        "inputs_kept": len(summary.inputs["kept"]) if summary.inputs else 30,
        "kept": " ".join(map(str, summary.inputs["kept"])) if summary.inputs else "all",
        "params": summary.final.params,
        "limit": result.context.limits["params"],
        "seconds": round(time.perf_counter() - start, 1),
    }


def measure(budgets=BUDGETS, seeds=SEEDS) -> pd.DataFrame:
    """One row per (budget, variant, seed)."""
    from autoprune.tasks import get_task
    from autoprune.training import dense_model, evaluate

    task = get_task("breast-cancer-mlp")
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for seed in seeds:
            dense = dense_model(task, seed=seed, progress=False).model  # outside both variants
            accuracy = evaluate(dense, task.test_data, task).metric
            rows.append({"budget": "dense", "variant": "dense", "seed": seed, "inputs_kept": 30})
            params = sum(p.numel() for p in dense.parameters())
            rows[-1].update(test_accuracy=round(accuracy, 6), kept="all", params=params)
            for budget in budgets:
                for name, inputs in VARIANTS:
                    out = Path(scratch) / f"{budget}-{name}-{seed}".replace(" ", "_")
                    row = _one(task, budget, inputs, seed, out)
                    rows.append({"budget": budget, "variant": name, "seed": seed, **row})
                    print(f"{budget} {name} seed {seed}: {row['test_accuracy']:.4f}", flush=True)
    return pd.DataFrame(rows)


def summarise(frame: pd.DataFrame) -> list[dict]:
    """Per (budget, variant): means and spreads; the searched inputs against all kept (Welch)."""
    out = []
    with warnings.catch_warnings():  # scipy warns of samples without spread; _stats handles them
        warnings.simplefilter("ignore", RuntimeWarning)
        for budget, at in frame.groupby("budget", sort=False):
            searched = at[at.variant == VARIANTS[0][0]].test_accuracy.tolist()
            for name in at.variant.unique():
                part = at[at.variant == name]
                s = summarize(part.test_accuracy.tolist())
                row = {
                    "budget": budget,
                    "variant": name,
                    "seeds": s.n,
                    "test accuracy": round(s.mean, 4),
                    "std": round(s.std, 4),
                    "inputs kept (mean)": f"{part.inputs_kept.mean():.1f}",
                    "params (mean)": round(float(part.params.mean())),
                    "seconds (mean)": f"{part.seconds.mean():.1f}"
                    if part.seconds.notna().any()
                    else "",
                }
                if name == VARIANTS[1][0]:
                    c = compare(searched, part.test_accuracy.tolist())
                    row["searched vs this"] = c.verdict
                    row["p (Welch)"] = "" if c.p_value is None else round(c.p_value, 4)
                else:
                    row["searched vs this"], row["p (Welch)"] = "", ""
                out.append(row)
    return out


def _kept_lines(frame: pd.DataFrame, names) -> list[str]:
    """The features each budget's searched final model keeps with seed 0, by name."""
    lines = []
    first = frame[(frame.variant == VARIANTS[0][0]) & (frame.seed == frame.seed.min())]
    for row in first.itertuples():
        kept = "all 30" if row.kept == "all" else ", ".join(names[int(i)] for i in row.kept.split())
        lines.append(f"- {row.budget}, seed {row.seed}: {row.inputs_kept} kept: {kept}")
    return lines


def run(
    out: str | Path = "results/benchmarks/features_search", budgets=BUDGETS, seeds=SEEDS
) -> Path:
    """Measure, write ``search.csv`` and ``search.md`` in ``out``; returns the markdown path."""
    from autoprune.tasks import get_task

    out = Path(out)
    start = time.perf_counter()
    with torch_threads(1):
        frame = measure(budgets, seeds)
    seconds = time.perf_counter() - start
    write_text(out / "search.csv", frame.to_csv(index=False))
    v = versions()
    lines = [
        "# Input features in the search space",
        "",
        f"Commit `{code_commit()}`; `python -m benchmarks features-search`, {seconds:.0f} s on one "
        f"thread (torch {v['torch']}, optuna {v.get('optuna', '?')}, {v['machine']}).",
        "",
        "Task `breast-cancer-mlp` (30 features, 341 train / 114 validation / 114 test, the MLP "
        f"30-64-32-2, {int(frame[frame.variant == 'dense'].params.iloc[0]):,} parameters). Per budget and seed, the search runs twice with the `quick` "
        f"space at the budget itself (both granularities, {TRIALS} trials, then the final step: "
        "the best candidates fine-tuned, one chosen on validation, tested once): with `inputs: "
        "true` (a trial also chooses how many of the most important input features to keep; two "
        "seed policies keep the best half and quarter) and without. The dense model is trained "
        "once per seed before both (not in the seconds). 'searched vs this': Welch's t-test of "
        "the test accuracies, p < 0.05.",
        "",
        markdown_table(summarise(frame)),
        "",
        "Features the searched final model keeps (the report and `results.inputs` name them):",
        "",
        *_kept_lines(frame, get_task("breast-cancer-mlp").feature_names),
        "",
        "Every run: [`search.csv`](search.csv).",
        "",
    ]
    path = out / "search.md"
    write_text(path, "\n".join(lines))
    return path
