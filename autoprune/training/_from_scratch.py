"""Train-time pruning: train a fresh model with a policy's schedule spanning the whole run.

Instead of pruning a trained dense model, :func:`train_with_policy` builds the
task's model from a seeded random initialisation and trains it with
:func:`~autoprune.training.prune_and_finetune`, the policy's fine-tuning recipe
stretched to a full training run (the task's epochs and learning rate unless
given). A gradual or iterative schedule moves its masks while the model learns;
a one-shot schedule prunes the random initialisation at step 0, so the smaller
architecture is trained from the start.

Example (a tenth of an epoch, to be quick):
    >>> from autoprune.policy import Policy, ScheduleSpec
    >>> from autoprune.tasks import get_task
    >>> task = get_task("digits-mlp")
    >>> policy = Policy.uniform(["fc1", "fc2"], 0.5, granularity="structured",
    ...                         schedule=ScheduleSpec("one-shot"))
    >>> outcome = train_with_policy(task, policy, epochs=0.1, seed=1)
    >>> outcome.model.fc1.out_features, outcome.finetune_steps
    (64, 2)
    >>> train_with_policy(task, policy, epochs=0)
    Traceback (most recent call last):
    ...
    autoprune.errors.ParameterError: The 'epochs' parameter must be in (0, 1000]. Got 0 instead.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from autoprune._validation import Interval, validate, validate_params
from autoprune.policy import FINETUNE_FIELDS, MAX_EPOCHS, Policy
from autoprune.policy_file import PolicyDocument, check_fingerprint
from autoprune.tasks import Task, get_task
from autoprune.training._prune_finetune import PruneOutcome, prune_and_finetune

EPOCHS = Interval(float, 0, MAX_EPOCHS, closed="right")  # a training run: more than no epochs
LR = FINETUNE_FIELDS["lr"]  # what a policy's recipe takes: (0, 1)
SEED = Interval(int, -(2**63), 2**64, closed="left")  # what torch generators take


@validate_params({"epochs": [None, EPOCHS], "lr": [None, LR], "seed": SEED})
def train_with_policy(
    task: str | Task,
    policy: Policy | PolicyDocument | str | Path,
    *,
    epochs: float | None = None,
    lr: float | None = None,
    seed: int = 0,
    progress: bool = False,
) -> PruneOutcome:
    """Train ``task``'s model from scratch while ``policy``'s schedule prunes it.

    ``epochs`` (fractional allowed) and ``lr`` default to the task's own
    dense-training values; they replace the policy's fine-tuning recipe, whose
    batch size and BatchNorm recalibration still apply, as does the policy's seed
    (data order, random criteria). ``seed`` seeds the initial weights only. A policy
    file or document is checked against the model's layers (its fingerprint), and
    the blocks it records as removed are removed first. Returns the
    :class:`~autoprune.training.PruneOutcome` of the run (model in eval mode).
    """
    from autoprune.model_dir import as_document
    from autoprune.prune.depth import remove_recorded_blocks

    task = get_task(task)
    document = as_document(policy)
    epochs = validate("epochs", task.epochs if epochs is None else epochs, EPOCHS)
    lr = validate("lr", task.lr if lr is None else lr, LR)
    model = remove_recorded_blocks(_fresh_model(task, seed), document, copy=False)
    if document.fingerprint:
        check_fingerprint(document.fingerprint, model)
    task.check_data(model)
    run = replace(document.policy, finetune=replace(document.policy.finetune, epochs=epochs, lr=lr))
    return prune_and_finetune(model, run, task, progress=progress)


def _fresh_model(task: Task, seed: int) -> torch.nn.Module:
    """``task.new_model()`` with torch seeded by ``seed``; the caller's generator is left as it was."""
    caller_rng = torch.get_rng_state()
    torch.manual_seed(seed)
    try:
        return task.new_model()
    finally:
        torch.set_rng_state(caller_rng)
