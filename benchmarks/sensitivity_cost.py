"""What a structured sensitivity analysis costs beyond the forward passes it needs.

torchvision's ``densenet121`` (random weights, 10 classes, 32x32 inputs), random
data: 128 validation images, 256 training images (the BatchNorm re-estimation
after each point), grid 0.25 and 0.5 of every channel group, one process, no
cache. The analysis's wall time is set against the forward passes it needs:
for every point, one BatchNorm re-estimation pass over the training images and
one evaluation over the validation images, timed on the dense model (median of
three). ``overhead = wall - points x forward``; the aim is an overhead at most
the forward time (the rest is tracing and bookkeeping).

    python -m benchmarks sensitivity-cost [--out results/benchmarks/sensitivity_cost]

Example:
    >>> SIDE, VAL_ITEMS, TRAIN_ITEMS, GRID
    (32, 128, 256, (0.25, 0.5))
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import torch

from autoprune._io import write_text
from benchmarks._common import code_commit, markdown_table, versions

SIDE, VAL_ITEMS, TRAIN_ITEMS, GRID = 32, 128, 256, (0.25, 0.5)
MODEL = "densenet121"


def _task(model: str, val_items: int, train_items: int):
    import autoprune
    from benchmarks._torchvision import import_torchvision

    models = import_torchvision().models
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(val_items + train_items, 3, SIDE, SIDE, generator=generator)
    y = torch.randint(0, 10, (len(x),), generator=generator)
    return autoprune.Task(
        name=f"{model}-random",
        build_model=lambda: models.get_model(model, weights=None, num_classes=10),
        train_data=(x[val_items:], y[val_items:]),
        val_data=(x[:val_items], y[:val_items]),
        test_data=(x[:val_items], y[:val_items]),
        example_input=torch.zeros(1, 3, SIDE, SIDE),
    )


def forward_seconds(model, task, repeats: int = 3) -> float:
    """One point's forward passes on the dense model: BatchNorm re-estimation, then evaluation."""
    from autoprune.training import evaluate, recalibrate_batchnorm

    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        recalibrate_batchnorm(model, task.train_data, seed=0)
        evaluate(model.eval(), task.val_data, task)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(
    model_name: str = MODEL,
    *,
    val_items: int = VAL_ITEMS,
    train_items: int = TRAIN_ITEMS,
    grid: tuple[float, ...] = GRID,
) -> dict:
    """Wall time of the analysis, its points, and the forward seconds they need."""
    from autoprune.sensitivity import SensitivityOptions, analyse_sensitivity

    task = _task(model_name, val_items, train_items)
    torch.manual_seed(0)
    model = task.build_model().eval()
    start = time.perf_counter()
    sens = analyse_sensitivity(
        model,
        task,
        granularity="structured",
        grid=grid,
        val_items=val_items,
        options=SensitivityOptions(cache=False, progress=False),
    )
    wall = time.perf_counter() - start
    points = int((sens.table["sparsity"] > 0).sum())
    per_point = forward_seconds(model, task)
    return {
        "model": model_name,
        "groups": len(sens.units),
        "points": points,
        "errors": int((sens.table["error"] != "").sum()),
        "wall_s": round(wall, 1),
        "forward_s_per_point": round(per_point, 3),
        "forward_s": round(points * per_point, 1),
        "overhead_s": round(wall - points * per_point, 1),
        "overhead / forward": round((wall - points * per_point) / (points * per_point), 2),
    }


def run(out: str | Path = "results/benchmarks/sensitivity_cost") -> Path:
    """Measure and write ``sensitivity_cost.md``; returns its path."""
    row = measure()
    v = versions()
    lines = [
        "# What a structured sensitivity analysis costs",
        "",
        f"Commit `{code_commit()}`; `python -m benchmarks sensitivity-cost` (torch {v['torch']}, "
        f"{torch.get_num_threads()} threads, {v['machine']}).",
        "",
        f"torchvision `{MODEL}`, random weights, {SIDE}x{SIDE} inputs; {VAL_ITEMS} validation and "
        f"{TRAIN_ITEMS} training images (random); grid {', '.join(map(str, GRID))} of every channel "
        "group; one process, no cache. forward = one BatchNorm re-estimation and one evaluation "
        "per point, timed on the dense model (median of 3); overhead = wall - forward.",
        "",
        markdown_table([row]),
        "",
    ]
    path = Path(out) / "sensitivity_cost.md"
    write_text(path, "\n".join(lines))
    return path
