"""How well the search's latency models predict measured latency, and whether rounding widths pays.

For each model (the built-in tasks' architectures; weights do not change a
forward pass's time): the per-layer latency table is measured (its wall time
recorded), 40 random structured variants are measured whole (the dense model
first), both latency models are fitted on 24 of them and their mean absolute
error is read on the other 16: the table model the search uses and the linear
model of per-layer MACs it used before, each fitted on the relative error (as the
search fits them) and on the absolute error; the mean signed error on the
fastest third of the held-out variants shows which fit overestimates small
models (what a search under a tight latency budget proposes). Then channel rounding: for the largest
layers of each model, the time at a width that is a multiple of 8 against the
fastest of the 7 narrower widths below it (a multiple of 8 that beats a
narrower width is faster than its MACs say: rounding up to it would pay).

    python -m benchmarks latency-model [--out results/benchmarks/latency_model]

Example:
    >>> MODELS, N_SAMPLES, N_FIT, MULTIPLE
    (('fashion-cnn', 'fashion-resnet', 'minilm-fidelity'), 40, 24, 8)
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import numpy as np
import torch

from autoprune._io import write_text
from benchmarks._common import code_commit, markdown_table, versions

MODELS = ("fashion-cnn", "fashion-resnet", "minilm-fidelity")
N_SAMPLES, N_FIT, MULTIPLE = 40, 24, 8
THREADS, LARGEST = 1, 3
BATCH = {"minilm-fidelity": 8}  # the compare benchmark's latency batch: 8 sentences of 64 tokens
DEFAULT_BATCH = 64


def _model(task_name: str):
    from autoprune.tasks import get_task

    task = get_task(task_name)
    torch.manual_seed(0)
    return task.build_model().eval(), task.example_input, task.cost_modules


def _errors(model, samples) -> np.ndarray:
    predicted = np.array([model.predict(r) for r in samples])
    measured = np.array([r["latency_ms"] for r in samples])
    return predicted / measured - 1


def _error(model, samples) -> float:
    """Mean absolute relative error."""
    return float(np.mean(np.abs(_errors(model, samples))))


def _bias(model, samples) -> float:
    """Mean signed relative error (> 0: predicted slower than measured)."""
    return float(np.mean(_errors(model, samples)))


def model_errors(
    task_name: str, *, n_samples: int = N_SAMPLES, n_fit: int = N_FIT, batch: int | None = None
) -> dict:
    """Table wall time and both models' held-out errors on one task's architecture."""
    batch = batch or BATCH.get(task_name, DEFAULT_BATCH)
    import pandas as pd

    from autoprune.budgets import CostModel, fit_latency_models, measure_table, sample_latencies

    model, example, scope = _model(task_name)
    cost_model = CostModel(model, example, scope=scope)
    start = time.perf_counter()
    table = measure_table(
        model, example, free=cost_model.shrinkable(), batch_size=batch, threads=THREADS
    )
    table_s = time.perf_counter() - start
    start = time.perf_counter()
    samples = sample_latencies(
        model, example, n_samples=n_samples, batch_size=batch, threads=THREADS, seed=1
    )
    samples_s = time.perf_counter() - start
    fit, held_out = samples.iloc[:n_fit], samples.iloc[n_fit:].to_dict(orient="records")
    models = fit_latency_models(pd.DataFrame(fit), list(cost_model.layers), table)
    absolute = {k: copy.deepcopy(m).fit(fit, holdout=0, relative=False) for k, m in models.items()}
    for m in models.values():
        m.fit(pd.DataFrame(fit), holdout=0)
    fastest = sorted(held_out, key=lambda r: r["latency_ms"])[: max(1, len(held_out) // 3)]
    return {
        "model": task_name,
        "batch": batch,
        "table cells": len(table.rows),
        "table s": f"{table_s:.1f}",
        "variants s": f"{samples_s:.1f}",
        "table model error": f"{_error(models['table'], held_out):.1%}",
        "MACs model error": f"{_error(models['macs'], held_out):.1%}",
        "table model error, absolute fit": f"{_error(absolute['table'], held_out):.1%}",
        "fastest third, table model bias": f"{_bias(models['table'], fastest):+.1%}",
        "the same, absolute fit": f"{_bias(absolute['table'], fastest):+.1%}",
    }


def rounding_rows(
    task_name: str, *, largest: int = LARGEST, batch: int | None = None, repeats: int = 30
) -> list[dict]:
    """For the largest shrinkable layers: a multiple-of-8 width against the 7 narrower ones."""
    batch = batch or BATCH.get(task_name, DEFAULT_BATCH)
    from autoprune.budgets import CostModel, measure_table

    model, example, scope = _model(task_name)
    cost_model = CostModel(model, example, scope=scope)
    free = {n: f for n, f in cost_model.shrinkable().items() if f[1]}
    rows = []
    for name in sorted(free, key=lambda n: -cost_model.layers[n].macs)[:largest]:
        out_dim = cost_model.layers[name].out_dim
        top = max(MULTIPLE * 2, (out_dim // 2) // MULTIPLE * MULTIPLE)
        widths = tuple(w / out_dim for w in range(top - MULTIPLE + 1, top + 1))
        table = measure_table(
            model,
            example,
            free={name: (False, True)},
            widths=widths,
            batch_size=batch,
            threads=THREADS,
            repeats=repeats,
        )
        frame = table.to_frame()
        frame = frame[(frame.layer == name) & (frame.out_kept <= top)]
        at_multiple = float(frame[frame.out_kept == top].ms.iloc[0])
        narrower = frame[frame.out_kept < top]
        best = narrower.loc[narrower.ms.idxmin()]
        rows.append(
            {
                "model": task_name,
                "layer": name,
                "dense width": out_dim,
                "multiple of 8": top,
                "ms at it": round(at_multiple, 3),
                "fastest narrower": f"{round(float(best.ms), 3)} at {int(best.out_kept)}",
                "multiple faster": "yes" if at_multiple < float(best.ms) else "no",
            }
        )
    return rows


def run(out: str | Path = "results/benchmarks/latency_model") -> Path:
    """Measure and write ``latency_model.md``; returns its path."""
    errors = [model_errors(name) for name in MODELS]
    rounding = [row for name in MODELS for row in rounding_rows(name)]
    v = versions()
    faster = sum(r["multiple faster"] == "yes" for r in rounding)
    lines = [
        "# The latency models against measured latency; rounding widths",
        "",
        f"Commit `{code_commit()}`; `python -m benchmarks latency-model` (torch {v['torch']}, "
        f"{THREADS} thread, {v['machine']}; the batch size of each model in the first table).",
        "",
        f"{N_SAMPLES} random structured variants per model measured whole; both models fitted on "
        f"{N_FIT} (on the relative error, as the search fits them), mean absolute relative error "
        f"on the other {N_SAMPLES - N_FIT}; the table model also fitted on the absolute error, "
        "and both fits' mean signed error on the fastest third of the held-out variants (> 0: "
        "predicted slower than measured). The table is every prunable layer timed alone at 5 "
        "widths of each dimension pruning can shrink.",
        "",
        markdown_table(errors),
        "",
        f"## Rounding kept channels to multiples of {MULTIPLE}",
        "",
        f"The {LARGEST} largest prunable layers of each model, timed alone (median of 30) at a "
        f"width that is a multiple of {MULTIPLE} and at the {MULTIPLE - 1} narrower widths below "
        f"it. In {faster} of {len(rounding)} layers the multiple is faster than every narrower "
        "width.",
        "",
        markdown_table(rounding),
        "",
    ]
    path = Path(out) / "latency_model.md"
    write_text(path, "\n".join(lines))
    return path
