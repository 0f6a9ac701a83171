"""Benchmark of the pruning engine on real data (``python -m benchmarks engine``).

1. ``fashion-cnn``: test accuracy of every criterion at 80% unstructured
   sparsity and at 50% of channels removed (structured), right after pruning
   and after one epoch of masked fine-tuning, all from the same dense checkpoint.
2. ``fashion-resnet``: half the channels removed structurally; parameters,
   MACs and CPU latency against the dense model, measured side by side.

Results go to ``results/engine/`` as markdown and JSON.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

from autoprune._io import write_json, write_text
from autoprune._progress import progress_bar
from autoprune.introspect import profile_model, prunable_layers, side_by_side_latency
from autoprune.policy import CRITERIA, FinetuneRecipe, Policy
from autoprune.tasks import get_task
from autoprune.training import dense_model, evaluate, prune_and_finetune
from benchmarks._common import markdown_table, versions

SETTINGS = {
    "unstructured": {"amount": 0.8, "label": "80% of weights"},
    "structured": {"amount": 0.5, "label": "50% of channels"},
}


def _criteria_table(out_dir: Path, *, epochs: float, criteria=CRITERIA) -> list[dict]:
    task = get_task("fashion-cnn")
    dense = dense_model(task)
    names = [n for n in prunable_layers(dense.model)]
    dense_params = profile_model(dense.model, task.example_input).params
    rows = []
    bar = progress_bar(total=len(criteria) * len(SETTINGS), desc="criteria", unit="run")
    for granularity, setting in SETTINGS.items():
        layers = (
            names if granularity == "unstructured" else names[:-1]
        )  # the output layer keeps its 10 classes
        for criterion in criteria:
            policy = Policy.uniform(
                layers,
                setting["amount"],
                granularity=granularity,
                criterion=criterion,
                finetune=FinetuneRecipe(epochs=epochs, lr=1e-4),
            )
            pruned = prune_and_finetune(copy.deepcopy(dense.model), policy, task, epochs=0)
            before = evaluate(pruned.model, task.test_data, task).metric
            start = time.perf_counter()
            tuned = prune_and_finetune(copy.deepcopy(dense.model), policy, task)
            after = evaluate(tuned.model, task.test_data, task).metric
            profile = profile_model(tuned.model, task.example_input)
            rows.append(
                {
                    "granularity": granularity,
                    "amount": setting["label"],
                    "criterion": criterion,
                    "test acc, pruned": before,
                    "test acc, +1 epoch": after,
                    "nonzero params": profile.nonzero_params,
                    "of dense": profile.nonzero_params / dense_params,
                    "seconds": round(time.perf_counter() - start, 1),
                }
            )
            bar.update(1)
    bar.close()
    return rows, dense.info["test_metric"]


def _resnet_speed() -> dict:
    task = get_task("fashion-resnet")
    dense = dense_model(task)
    groups = [n for n in prunable_layers(dense.model)][:-1]
    policy = Policy.uniform(
        groups, 0.5, granularity="structured", finetune=FinetuneRecipe(epochs=0)
    )
    pruned = prune_and_finetune(copy.deepcopy(dense.model), policy, task)
    p_dense, p_pruned = (
        profile_model(dense.model, task.example_input),
        profile_model(pruned.model, task.example_input),
    )
    latency = side_by_side_latency(
        {"dense": dense.model, "pruned": pruned.model}, task.example_input
    )
    return {
        "params": [p_dense.params, p_pruned.params],
        "macs": [p_dense.macs, p_pruned.macs],
        "latency_ms": [latency["dense"]["median_ms"], latency["pruned"]["median_ms"]],
        "latency": latency,
        "speedup_measured": latency["dense"]["median_ms"] / latency["pruned"]["median_ms"],
        "speedup_from_macs": p_dense.macs / p_pruned.macs,
        "test_acc_dense": dense.info["test_metric"],
        "test_acc_pruned_no_finetune": evaluate(pruned.model, task.test_data, task).metric,
    }


def run(out_dir: str | Path = "results/engine", *, epochs: float = 1.0) -> Path:
    """Run both parts and write ``engine.md`` and ``engine.json`` under ``out_dir``."""
    out_dir = Path(out_dir)
    rows, dense_acc = _criteria_table(out_dir, epochs=epochs)
    speed = _resnet_speed()
    lat = speed["latency"]["dense"]
    text = [
        "# Pruning engine on real data",
        "",
        f"## fashion-cnn: every criterion, from one dense checkpoint (test accuracy {dense_acc:.4f})",
        "",
        f"Unstructured: 80% of each layer's weights. Structured: 50% of the output channels of conv1, conv2 "
        f"and fc1 (physically removed; the weight sparsity that results is higher). Fine-tuning: {epochs:g} epoch, "
        "Adam, lr 1e-4, masks enforced.",
        "",
        markdown_table(rows),
        "",
        "## fashion-resnet: half the channels removed, structurally (no fine-tuning)",
        "",
        markdown_table(
            [
                {
                    "model": "dense",
                    "params": speed["params"][0],
                    "MACs": speed["macs"][0],
                    "latency ms (median)": speed["latency_ms"][0],
                },
                {
                    "model": "50% channels",
                    "params": speed["params"][1],
                    "MACs": speed["macs"][1],
                    "latency ms (median)": speed["latency_ms"][1],
                },
            ]
        ),
        "",
        f"Latency: median of {lat['rounds']} interleaved rounds of 30 timed runs, batch {lat['batch_size']}, "
        f"{lat['threads']} thread. Measured speedup {speed['speedup_measured']:.2f}x; "
        f"MACs promise {speed['speedup_from_macs']:.2f}x.",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in versions().items()),
    ]
    write_text(out_dir / "engine.md", "\n".join(text) + "\n")
    write_json(
        out_dir / "engine.json",
        {"criteria": rows, "dense_test_acc": dense_acc, "resnet": speed, "versions": versions()},
    )
    return out_dir / "engine.md"
