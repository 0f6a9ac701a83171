"""The cheap, faithful score of a candidate: how far its outputs are from the dense model's.

No candidate is trained during the search. A pruned candidate gets its
BatchNorm statistics re-estimated on a few training items (what pruning
shifted; EagleEye's adaptive BatchNorm), then its outputs on a fixed set of
training items are compared with the dense model's, which are computed once:

- for a classifier (the task's metric is accuracy): the KL divergence of the
  candidate's class distribution from the dense model's;
- otherwise: the task's own loss with the dense outputs as targets (e.g. the
  embedding distillation loss of ``minilm-fidelity``).

Lower is better; the search maximises ``fitness = -distance``. The first look
uses the first ``first_look`` items; a confirmation all ``confirm`` of them
(the items are the same for every candidate, so distances compare exactly).

Example:
    >>> from autoprune.tasks import get_task
    >>> from autoprune.training import dense_model
    >>> task = get_task("digits-mlp")
    >>> dense = dense_model(task, progress=False).model
    >>> fitness = Fitness(dense, task, FitnessSettings(first_look=64, confirm=128, bn_items=64))
    >>> fitness.distance(dense, items=64)  # the dense model is at distance 0 from itself
    0.0
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from autoprune.search._space_fields import FitnessSettings
from autoprune.tasks import Task
from autoprune.tasks._data import iterate_batches, take

BATCH = 256


def _inputs(data, n: int, seed: int) -> torch.Tensor:
    subset = take(data, n, seed=seed)
    return torch.cat([x for x, _ in iterate_batches(subset, batch_size=BATCH)])


@torch.no_grad()
def _outputs(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    was_training = model.training
    model.eval()
    try:
        return torch.cat([model(inputs[i : i + BATCH]) for i in range(0, len(inputs), BATCH)])
    finally:
        model.train(was_training)


def has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


@torch.no_grad()
def recalibrate(model: nn.Module, inputs: torch.Tensor) -> None:
    """Re-estimate BatchNorm running statistics on ``inputs`` (a cumulative average over them)."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    was_training = model.training
    model.train()
    try:
        for i in range(0, len(inputs), BATCH):
            model(inputs[i : i + BATCH])
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        model.train(was_training)


class Fitness:
    """Distances of candidates to the dense model on fixed calibration items (see the module docstring)."""

    def __init__(
        self, dense: nn.Module, task: Task, settings: FitnessSettings, *, seed: int = 0
    ) -> None:
        self.task = task
        self.settings = settings
        device = next(dense.parameters()).device
        self.inputs = _inputs(task.train_data, settings.confirm, seed + 1).to(device)
        self.bn_inputs = _inputs(task.train_data, settings.bn_items, seed + 2).to(device)
        self.dense_outputs = _outputs(dense, self.inputs)
        self.classifier = task.metric_name == "accuracy" and self.dense_outputs.dim() == 2
        self.recalibrates = has_batchnorm(dense)

    def prepare(self, model: nn.Module) -> None:
        """Ready a pruned model for scoring: its BatchNorm statistics re-estimated."""
        if self.recalibrates:
            recalibrate(model, self.bn_inputs)

    def distance(self, model: nn.Module, *, items: int) -> float:
        """Distance of ``model``'s outputs from the dense model's on the first ``items`` items."""
        items = min(items, len(self.inputs))
        outputs = _outputs(model, self.inputs[:items])
        dense = self.dense_outputs[:items]
        if self.classifier:
            value = F.kl_div(
                F.log_softmax(outputs.double(), -1),
                F.log_softmax(dense.double(), -1),
                log_target=True,
                reduction="batchmean",
            )
        else:
            value = self.task.loss(outputs, dense)
        value = float(value)
        return max(0.0, value) if value == value else float("inf")
