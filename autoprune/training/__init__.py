"""Training: the loops, the dense-model cache, prune-and-fine-tune.

- :func:`train_model` (with :class:`TrainingSettings`) and :func:`evaluate`: the
  loops every other part trains and measures with;
- :func:`dense_model`: the task's trained dense model, cached;
- :func:`prune_and_finetune`: the one way a policy is applied with fine-tuning;
- :func:`train_with_policy`: train-time pruning, a fresh model trained from scratch
  while the policy's schedule prunes it;
- :func:`recover` (with :class:`RecoverySettings`): the one recovery of a pruned
  model, with distillation from the dense model.

Example:
    >>> from autoprune.tasks import get_task
    >>> task = get_task("digits-mlp")
    >>> model = task.new_model()
    >>> train_model(model, task, settings=TrainingSettings(steps=3), progress=False).steps
    3
"""

from autoprune.training._dense import DenseModel, architecture_fingerprint, dense_model
from autoprune.training._evaluate import Evaluation, evaluate, recalibrate_batchnorm
from autoprune.training._from_scratch import train_with_policy
from autoprune.training._loop import StepCallback, TrainingLog, train_model
from autoprune.training._prune_finetune import (
    PruneOutcome,
    finetune_steps,
    pin_ratios,
    pin_structure,
    prune_and_finetune,
)
from autoprune.training._prune_recover import finetune_policy, prune_and_recover
from autoprune.training._recovery import RecoveryLog, RecoverySettings, recover
from autoprune.training._settings import TrainingSettings

__all__ = [
    "DenseModel",
    "Evaluation",
    "PruneOutcome",
    "RecoveryLog",
    "RecoverySettings",
    "StepCallback",
    "TrainingLog",
    "TrainingSettings",
    "architecture_fingerprint",
    "dense_model",
    "evaluate",
    "finetune_steps",
    "pin_ratios",
    "pin_structure",
    "prune_and_finetune",
    "recalibrate_batchnorm",
    "finetune_policy",
    "prune_and_recover",
    "recover",
    "train_model",
    "train_with_policy",
]
