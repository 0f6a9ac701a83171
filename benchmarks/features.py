"""Input-feature pruning against scikit-learn's feature selection, on breast cancer (30 features).

At each number of kept features ``k``, over several seeds (the MLP's
initialisation and batch order; the split is fixed):

- **autoprune**: the dense MLP (trained on all 30 features) loses the input
  columns of its first layer with the smallest weight norms
  (:func:`autoprune.prune.inputs.prune_inputs`), then a short fine-tune;
- **SelectKBest** (``f_classif``) and **RFE** (``LogisticRegression``), fitted on
  the training split: the same MLP trained from scratch on the chosen features;
- **autoprune features, from scratch**: the same MLP trained from scratch on the
  features autoprune kept, which separates the choice of features from the warm
  start of the pruned model.

Test accuracy, mean and standard deviation over the seeds; Welch's t-test of
autoprune against each other method says ``ahead``, ``level`` or ``behind``.

    python -m benchmarks features [--out results/benchmarks/features]

Example:
    >>> [m for m, _ in METHODS][:2]
    ['autoprune', 'SelectKBest']
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import pandas as pd
import torch

from autoprune._io import write_text
from benchmarks._common import code_commit, markdown_table, versions
from benchmarks._stats import compare, summarize

KS = (5, 10, 15)
SEEDS = (0, 1, 2, 3, 4)
RECOVERY_EPOCHS = 10  # the short fine-tune after input pruning
RECOVERY_LR = 1e-3
METHODS = (
    ("autoprune", "input pruning of the trained MLP (weight-column L2 norm), 10-epoch fine-tune"),
    ("SelectKBest", "SelectKBest(f_classif), MLP trained from scratch (40 epochs)"),
    ("RFE", "RFE(LogisticRegression), MLP trained from scratch (40 epochs)"),
    ("autoprune features, from scratch", "autoprune's features, MLP trained from scratch"),
    ("all 30 features", "the dense MLP, no selection"),
)


def _dataset(x: torch.Tensor, y: torch.Tensor, kept) -> tuple[torch.Tensor, torch.Tensor]:
    return (x[:, list(kept)], y) if kept is not None else (x, y)


def _train(task, kept, seed: int):
    """A fresh MLP on the features ``kept`` (all when None), trained with the task's settings."""
    from autoprune.tasks.tabular import N_FEATURES, TabularMLP
    from autoprune.training import TrainingSettings, train_model

    torch.manual_seed(seed)
    model = TabularMLP(in_features=N_FEATURES if kept is None else len(kept))
    x, y = task.train_data.tensors
    data = torch.utils.data.TensorDataset(*_dataset(x, y, kept))
    train_model(model, task, settings=TrainingSettings(seed=seed), data=data, progress=False)
    return model


def _accuracy(model, task, kept) -> float:
    from autoprune.training import evaluate

    x, y = task.test_data.tensors
    return evaluate(model, torch.utils.data.TensorDataset(*_dataset(x, y, kept)), task).metric


def selected_features(task, k: int) -> dict[str, list[int]]:
    """The features scikit-learn's selectors choose on the training split."""
    from sklearn.feature_selection import RFE, SelectKBest, f_classif
    from sklearn.linear_model import LogisticRegression

    x, y = (t.numpy() for t in task.train_data.tensors)
    kbest = SelectKBest(f_classif, k=k).fit(x, y)
    rfe = RFE(LogisticRegression(max_iter=2000), n_features_to_select=k).fit(x, y)
    return {
        "SelectKBest": sorted(int(i) for i in kbest.get_support(indices=True)),
        "RFE": sorted(int(i) for i in rfe.get_support(indices=True)),
    }


def _pruned_and_recovered(task, dense, k: int, seed: int):
    from autoprune.prune.inputs import prune_inputs
    from autoprune.training import TrainingSettings, train_model

    result = prune_inputs(dense, k, feature_names=task.feature_names)
    x, y = task.train_data.tensors
    data = torch.utils.data.TensorDataset(result.select(x), y)
    settings = TrainingSettings(epochs=RECOVERY_EPOCHS, lr=RECOVERY_LR, seed=seed)
    train_model(result.model, task, settings=settings, data=data, progress=False)
    return result


def measure(task, ks=KS, seeds=SEEDS) -> tuple[pd.DataFrame, dict]:
    """One row per (k, method, seed): test accuracy, kept features, seconds; and the features chosen."""
    rows, chosen = [], {}
    selections = {k: selected_features(task, k) for k in ks}
    for seed in seeds:
        start = time.perf_counter()
        dense = _train(task, None, seed)
        dense_seconds = time.perf_counter() - start
        rows.append(_row(None, "all 30 features", seed, _accuracy(dense, task, None), None, start))
        rows[-1]["seconds"] = round(dense_seconds, 2)
        for k in ks:
            start = time.perf_counter()
            result = _pruned_and_recovered(task, dense, k, seed)
            rows.append(
                _row(
                    k,
                    "autoprune",
                    seed,
                    _accuracy(result.model, task, result.kept),
                    result.kept,
                    start,
                )
            )
            chosen.setdefault(k, {}).setdefault("autoprune", result.kept)
            runs = {**selections[k], "autoprune features, from scratch": list(result.kept)}
            for method, kept in runs.items():
                start = time.perf_counter()
                model = _train(task, kept, seed)
                rows.append(_row(k, method, seed, _accuracy(model, task, kept), kept, start))
            chosen[k].update(selections[k])
    return pd.DataFrame(rows), chosen


def _row(k, method: str, seed: int, accuracy: float, kept, start: float) -> dict:
    return {
        "k": k if k is not None else 30,
        "method": method,
        "seed": seed,
        "test_accuracy": round(float(accuracy), 6),
        "kept": " ".join(map(str, kept)) if kept is not None else "all",
        "seconds": round(time.perf_counter() - start, 2),
    }


def summarise(frame: pd.DataFrame) -> list[dict]:
    """Per (k, method): mean and std of the test accuracy; autoprune against it (Welch)."""
    with warnings.catch_warnings():  # scipy warns of samples without spread; _stats handles them
        warnings.simplefilter("ignore", RuntimeWarning)
        return _summary_rows(frame)


def _summary_rows(frame: pd.DataFrame) -> list[dict]:
    out = []
    for k, at_k in frame.groupby("k", sort=True):
        ours = at_k[at_k.method == "autoprune"].test_accuracy.tolist()
        for method, _ in METHODS:
            values = at_k[at_k.method == method].test_accuracy.tolist()
            if not values:
                continue
            s = summarize(values)
            row = {"k": int(k), "method": method, "seeds": s.n, "test accuracy": round(s.mean, 4)}
            row["std"] = round(s.std, 4)
            if ours and method != "autoprune":
                c = compare(ours, values)
                row["autoprune vs this"] = c.verdict
                row["p (Welch)"] = "" if c.p_value is None else round(c.p_value, 4)
            else:
                row["autoprune vs this"], row["p (Welch)"] = "", ""
            out.append(row)
    return out


def _feature_lines(task, chosen: dict) -> list[str]:
    lines = []
    for k in sorted(chosen):
        for method, kept in chosen[k].items():
            names = ", ".join(task.feature_names[i] for i in kept)
            seed_note = " (seed 0)" if method == "autoprune" else ""
            lines.append(f"- k={k}, {method}{seed_note}: {names}")
    return lines


def run(out: str | Path = "results/benchmarks/features", ks=KS, seeds=SEEDS) -> Path:
    """Measure, write ``features.csv`` and ``features.md``; returns the markdown path."""
    from autoprune.tasks import get_task

    out = Path(out)
    task = get_task("breast-cancer-mlp")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    start = time.perf_counter()
    try:
        frame, chosen = measure(task, ks, seeds)
    finally:
        torch.set_num_threads(threads)
    seconds = time.perf_counter() - start
    write_text(out / "features.csv", frame.to_csv(index=False))
    v = versions()
    lines = [
        "# Input-feature pruning against scikit-learn's feature selection",
        "",
        f"Commit `{code_commit()}`; `python -m benchmarks features`, {seconds:.0f} s on one thread "
        f"(torch {v['torch']}, scikit-learn {v['scikit-learn']}, {v['machine']}).",
        "",
        "Task `breast-cancer-mlp`: scikit-learn's breast cancer data (569 cases, 30 features, "
        "standardised on the training split), 341 train / 114 validation / 114 test, the MLP "
        f"30-64-32-2 trained 40 epochs (Adam, lr 3e-3). Seeds {', '.join(map(str, seeds))} vary "
        "the MLP's initialisation and batch order; the split is fixed.",
        "",
        *(f"- **{name}**: {text}" for name, text in METHODS),
        "",
        f"autoprune's fine-tune: {RECOVERY_EPOCHS} epochs at lr {RECOVERY_LR:g} on the kept "
        "columns. Selectors are fitted on the training split only. 'autoprune vs this': "
        "Welch's t-test of autoprune's test accuracies against the row's, p < 0.05.",
        "",
        markdown_table(summarise(frame)),
        "",
        "Kept features:",
        "",
        *_feature_lines(task, chosen),
        "",
        "Every run: [`features.csv`](features.csv).",
        "",
    ]
    path = out / "features.md"
    write_text(path, "\n".join(lines))
    return path
