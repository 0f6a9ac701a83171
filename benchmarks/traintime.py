"""Train-time pruning against post-training pruning, at the same structure and the same total epochs.

Every arm ends in the same architecture: ``fashion-cnn`` with the same share
of channels removed from every group (L1 criterion, physically removed), and
every arm trains the same total number of epochs (the dense model's
``DENSE_EPOCHS`` plus ``RECOVERY_EPOCHS``):

- **post-training, one-shot**: the dense model (trained ``DENSE_EPOCHS`` from
  seed s), pruned at once, fine-tuned ``RECOVERY_EPOCHS``;
- **post-training, regularised**: the same dense model; during the fine-tune,
  the first half shrinks the units with a group lasso (proximal steps,
  the schedule's default ``strength``), then they are pruned and the second half fine-tunes;
- **from scratch, gradual**: a fresh model (seed s) trained ``DENSE_EPOCHS +
  RECOVERY_EPOCHS`` while the gradual schedule removes channels in
  ``GRADUAL_EVENTS`` steps over the first 75% of training (``autoprune train
  --policy``; each removal restarts the optimiser, as the layers change shape);
- **from scratch, pruned architecture**: the same, one-shot: the random
  initialisation is pruned at step 0 and the small model trained throughout.

Test accuracy, mean and standard deviation over the seeds; Welch's t-test of
each arm against the post-training one-shot arm says ``ahead``, ``level`` or
``behind``. Seconds per row: the dense training (post-training arms) is
included, as every arm's total training is compared.

    python -m benchmarks traintime [--out results/benchmarks/traintime]

Example:
    >>> [name for name, _ in ARMS][:2]
    ['post-training, one-shot', 'post-training, regularised']
"""

from __future__ import annotations

import math
import time
import warnings
from pathlib import Path

import pandas as pd
import torch

from autoprune._io import write_text
from benchmarks._common import code_commit, markdown_table, versions
from benchmarks._stats import compare, summarize

SEEDS = (0, 1, 2, 3, 4)
RATIO = 0.5  # channels removed from every group
DENSE_EPOCHS = 5  # the task's dense training
RECOVERY_EPOCHS = 1.0
RECOVERY_LR = 5e-4
GRADUAL_EVENTS = (
    8  # from scratch, gradual: channels removed in this many steps over 75% of training
)
ARMS = (
    ("post-training, one-shot", "dense model pruned at once, then fine-tuned"),
    ("post-training, regularised", "dense model; group lasso half the fine-tune, then pruned"),
    ("from scratch, gradual", "trained from random weights, gradual masks during training"),
    ("from scratch, pruned architecture", "random weights pruned at step 0, then trained"),
)
REFERENCE = ARMS[0][0]


def _policy(task, schedule: str):
    from autoprune.policy import FinetuneRecipe, Policy, ScheduleSpec
    from autoprune.prune import structured_units

    units = structured_units(task.new_model(), task.example_input)
    steps = math.ceil(len(task.train_data) / task.batch_size) * (DENSE_EPOCHS + RECOVERY_EPOCHS)
    return Policy.uniform(
        list(units.groups),
        RATIO,
        granularity="structured",
        criterion="l1",
        schedule=ScheduleSpec(
            schedule,
            end=0.5 if schedule == "regularised" else 0.75,
            every=max(1, math.ceil(0.75 * steps / GRADUAL_EVENTS)),
        ),
        finetune=FinetuneRecipe(epochs=RECOVERY_EPOCHS, lr=RECOVERY_LR),
    )


def _arm(task, arm: str, seed: int):
    """The model an arm ends with, and the seconds it took (dense training included)."""
    from dataclasses import replace

    from autoprune.training import dense_model, prune_and_finetune, train_with_policy

    start = time.perf_counter()
    if arm.startswith("post-training"):
        schedule = "regularised" if arm.endswith("regularised") else "one-shot"
        dense = dense_model(task, seed=seed, progress=False)
        # a dense model trained just now is in the elapsed time; a cached one is charged its training
        dense_seconds = float(dense.info.get("train_seconds", 0.0)) if dense.info["cached"] else 0.0
        policy = replace(_policy(task, schedule), seed=seed)
        outcome = prune_and_finetune(dense.model, policy, task)
        return outcome.model, time.perf_counter() - start + dense_seconds
    schedule = "gradual" if arm.endswith("gradual") else "one-shot"
    policy = replace(_policy(task, schedule), seed=seed)
    outcome = train_with_policy(task, policy, epochs=DENSE_EPOCHS + RECOVERY_EPOCHS, seed=seed)
    return outcome.model, time.perf_counter() - start


def measure(task, seeds=SEEDS) -> pd.DataFrame:
    """One row per (arm, seed): test accuracy, parameters, seconds."""
    from autoprune.introspect import count_params
    from autoprune.training import evaluate

    rows = []
    dense_params = count_params(task.new_model())
    for seed in seeds:
        for arm, _ in ARMS:
            model, seconds = _arm(task, arm, seed)
            rows.append(
                {
                    "arm": arm,
                    "seed": seed,
                    "test_accuracy": round(evaluate(model, task.test_data, task).metric, 6),
                    "params": count_params(model),
                    "params_share": round(count_params(model) / dense_params, 4),
                    "seconds": round(seconds, 1),
                }
            )
            print(f"seed {seed} {arm}: {rows[-1]['test_accuracy']:.4f}", flush=True)
    return pd.DataFrame(rows)


def summarise(frame: pd.DataFrame) -> list[dict]:
    """Per arm: mean and std of test accuracy, parameters, seconds; the arm against the reference."""
    out = []
    reference = frame[frame.arm == REFERENCE].test_accuracy.tolist()
    with warnings.catch_warnings():  # scipy warns of samples without spread; _stats handles them
        warnings.simplefilter("ignore", RuntimeWarning)
        for arm, _ in ARMS:
            rows = frame[frame.arm == arm]
            s = summarize(rows.test_accuracy.tolist())
            row = {"arm": arm, "seeds": s.n, "test accuracy": round(s.mean, 4)}
            row["std"] = round(s.std, 4)
            row["params"] = int(rows.params.iloc[0])
            row["seconds (mean)"] = f"{float(rows.seconds.mean()):.1f}"
            if arm == REFERENCE:
                row["vs post-training one-shot"], row["p (Welch)"] = "", ""
            else:
                c = compare(rows.test_accuracy.tolist(), reference)
                row["vs post-training one-shot"] = c.verdict
                row["p (Welch)"] = "" if c.p_value is None else round(c.p_value, 4)
            out.append(row)
    return out


def run(out: str | Path = "results/benchmarks/traintime", seeds=SEEDS) -> Path:
    """Measure, write ``traintime.csv`` and ``traintime.md``; returns the markdown path."""
    from autoprune.tasks import get_task

    out = Path(out)
    task = get_task("fashion-cnn")
    start = time.perf_counter()
    frame = measure(task, seeds)
    seconds = time.perf_counter() - start
    write_text(out / "traintime.csv", frame.to_csv(index=False))
    v = versions()
    lines = [
        "# Train-time pruning against post-training pruning",
        "",
        f"Commit `{code_commit()}`; `python -m benchmarks traintime`, {seconds:.0f} s "
        f"(torch {v['torch']}, {torch.get_num_threads()} threads, {v['machine']}).",
        "",
        f"Task `fashion-cnn` (Fashion-MNIST test split, 10,000 images). Every arm removes "
        f"{RATIO:.0%} of the channels of every group (L1, physically) and trains "
        f"{DENSE_EPOCHS + RECOVERY_EPOCHS:g} epochs in all: post-training arms "
        f"{DENSE_EPOCHS} dense epochs then a {RECOVERY_EPOCHS:g}-epoch fine-tune at lr "
        f"{RECOVERY_LR:g}; from-scratch arms {DENSE_EPOCHS + RECOVERY_EPOCHS:g} epochs at the "
        "task's training lr. Seed s sets the dense model's (or the fresh model's) initialisation "
        "and batch order and the fine-tune's.",
        "",
        *(f"- **{name}**: {text}" for name, text in ARMS),
        "",
        "Seconds include the dense training of post-training arms (a cached dense model counts "
        "the seconds its training took). 'vs post-training one-shot': "
        "Welch's t-test, p < 0.05.",
        "",
        markdown_table(summarise(frame)),
        "",
        "Every run: [`traintime.csv`](traintime.csv).",
        "",
    ]
    path = out / "traintime.md"
    write_text(path, "\n".join(lines))
    return path
