"""Recovery: the one way a pruned model is trained back, with distillation from the dense model.

Every consumer (a search trial, the final model, ``apply --finetune``, the
benchmark) calls :func:`recover` with a :class:`RecoverySettings`, so "the same
recovery" means the same optimiser, the same learning-rate rule, the same epochs
and the same loss everywhere. The loss mixes the task's own loss with a
distillation term towards the dense model's outputs::

    loss = (1 - distill_weight) * task.loss(out, y) + distill_weight * distill(out, dense(x))

``distill`` is ``"kl"`` (logits: the KL divergence of the softened student from
the softened teacher, times ``temperature**2``), ``"cosine"`` (embeddings:
1 - cosine similarity) or ``"mse"``. Weights that are exactly zero in the
prunable layers when recovery starts stay zero (``keep_zeros``), so a sparse
model stays as sparse; ``after_step`` callbacks (e.g. a Pruner's masks, which
move with a gradual schedule) run after every optimiser step.

Example:
    >>> from autoprune.tasks import get_task
    >>> task = get_task("digits-mlp")
    >>> dense = task.new_model()
    >>> model = task.new_model()
    >>> with torch.no_grad():
    ...     model.fc1.weight[:, :8] = 0.0
    >>> settings = RecoverySettings(steps=3, lr=1e-3, distill_weight=0.5)
    >>> log = recover(model, dense, task, settings)
    >>> log.steps, float(model.fc1.weight[:, :8].abs().sum())
    (3, 0.0)
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from autoprune._constraints import BOOL, Interval, Options
from autoprune._device import model_device
from autoprune._validation import MAX_SEED, validate_fields
from autoprune.errors import ParameterError, TrainingDiverged
from autoprune.introspect import prunable_layers
from autoprune.tasks import Task
from autoprune.training._loop import StepCallback, _shuffled_batches, seeded_training

OPTIMIZERS = ("adam", "adamw", "sgd")
LR_RULES = ("constant", "cosine", "linear")
DISTILL_LOSSES = ("kl", "cosine", "mse")
RECOVERY_FIELDS = {
    "epochs": Interval(float, 0, 10_000),
    "lr": Interval(float, 0, 1, closed="neither"),
    "optimizer": Options(OPTIMIZERS),
    "lr_rule": Options(LR_RULES),
    "warmup": Interval(float, 0, 1, closed="left"),
    "weight_decay": [None, Interval(float, 0, None)],
    "batch_size": [None, Interval(int, 1, 65_536)],
    "distill_weight": Interval(float, 0, 1),
    "distill": Options(DISTILL_LOSSES),
    "temperature": Interval(float, 0, 100, closed="right"),
    "seed": Interval(int, -(2**63), MAX_SEED, closed="left"),
    "steps": [None, Interval(int, 0, None)],
    "max_steps": [None, Interval(int, 0, None)],
    "keep_zeros": BOOL,
}


@dataclass(frozen=True)
class RecoverySettings:
    """How a pruned model is trained back (see the module docstring); None takes the task's value.

    ``lr_rule``: ``constant``, ``cosine`` (to zero at the last step) or ``linear``
    (to zero); ``warmup``: the share of steps with a linear warm-up first.
    ``steps`` sets the number of optimiser steps exactly (overriding ``epochs``);
    ``max_steps`` caps it. ``optimizer`` ``sgd`` uses momentum 0.9 (Nesterov).

    Example:
        >>> RecoverySettings(epochs=0.5, distill_weight=1.0).distill
        'kl'
        >>> RecoverySettings(optimizer="lion")
        Traceback (most recent call last):
        ...
        autoprune.errors.ParameterError: The 'optimizer' parameter must be one of 'adam', 'adamw', 'sgd'. Got 'lion' instead.
    """

    epochs: float = 1.0
    lr: float = 5e-4
    optimizer: str = "adam"
    lr_rule: str = "cosine"
    warmup: float = 0.0
    weight_decay: float | None = None
    batch_size: int | None = None
    distill_weight: float = 0.0
    distill: str = "kl"
    temperature: float = 2.0
    seed: int = 0
    steps: int | None = None
    max_steps: int | None = None
    keep_zeros: bool = True

    def __post_init__(self) -> None:
        validate_fields(self, RECOVERY_FIELDS)

    def total_steps(self, steps_per_epoch: int) -> int:
        """Optimiser steps of the run: ``steps``, or ``epochs`` of ``steps_per_epoch``, capped."""
        total = math.ceil(self.epochs * steps_per_epoch) if self.steps is None else self.steps
        return total if self.max_steps is None else min(total, self.max_steps)

    def to_dict(self) -> dict:
        """Plain fields (for result files and run records)."""
        return asdict(self)


@dataclass(frozen=True)
class RecoveryLog:
    """What a recovery run did: steps, epochs, the final mean loss, seconds, the last learning rate."""

    steps: int
    epochs: float
    loss: float
    seconds: float
    final_lr: float


def lr_factor(rule: str, step: int, total: int, warmup_steps: int = 0) -> float:
    """The learning-rate multiplier of optimiser step ``step`` (0-based) of ``total``.

    Example:
        >>> [round(lr_factor("cosine", s, 5), 3) for s in range(5)]
        [1.0, 0.905, 0.655, 0.345, 0.095]
        >>> [lr_factor("linear", s, 4, warmup_steps=2) for s in range(4)]
        [0.5, 1.0, 1.0, 0.5]
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if rule == "constant" or total <= warmup_steps:
        return 1.0
    progress = (step - warmup_steps) / (total - warmup_steps)
    if rule == "linear":
        return 1.0 - progress
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def distillation_term(
    outputs: torch.Tensor, teacher: torch.Tensor, kind: str, temperature: float
) -> torch.Tensor:
    """The distillation loss of ``outputs`` towards the dense model's ``teacher`` outputs.

    Example:
        >>> logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
        >>> float(distillation_term(logits, logits, "kl", 2.0)), float(distillation_term(logits, logits, "mse", 1.0))
        (0.0, 0.0)
    """
    if kind == "kl":
        student = F.log_softmax(outputs / temperature, dim=-1)
        target = F.log_softmax(teacher / temperature, dim=-1)
        kl = F.kl_div(student, target, log_target=True, reduction="batchmean")
        return kl * temperature**2
    if kind == "cosine":
        return (1.0 - F.cosine_similarity(outputs, teacher, dim=-1)).mean()
    return F.mse_loss(outputs, teacher)


def _optimizer(model: nn.Module, s: RecoverySettings, weight_decay: float):
    params = [p for p in model.parameters() if p.requires_grad]
    if s.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=s.lr, weight_decay=weight_decay)
    if s.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=s.lr, momentum=0.9, nesterov=True, weight_decay=weight_decay
        )
    return torch.optim.Adam(params, lr=s.lr, weight_decay=weight_decay)


class ZeroKeeper:
    """Keeps the weights of prunable layers that are exactly zero now at zero (an ``after_step`` callback)."""

    def __init__(self, model: nn.Module) -> None:
        self.masks = {}
        for name, module in prunable_layers(model).items():
            zero = module.weight.detach() == 0
            if bool(zero.any()):
                self.masks[name] = zero

    @torch.no_grad()
    def __call__(self, model: nn.Module, step: int = 0) -> None:
        layers = prunable_layers(model)
        for name, zero in self.masks.items():
            layers[name].weight.masked_fill_(zero, 0.0)


def recover(
    model: nn.Module,
    dense: nn.Module | None,
    task: Task,
    settings: RecoverySettings | None = None,
    *,
    after_step: Sequence[StepCallback] = (),
    data=None,
    progress: bool = False,
    desc: str = "recover",
) -> RecoveryLog:
    """Train the pruned ``model`` in place on the task's training split (or ``data``) as ``settings`` say.

    ``dense`` is the teacher of the distillation term (needed when
    ``settings.distill_weight > 0``; it is not changed). Seeded and deterministic
    on the CPU; raises :class:`~autoprune.errors.TrainingDiverged` on a NaN or
    infinite loss. See the module docstring for the loss.
    """

    s = settings or RecoverySettings()
    if s.distill_weight > 0 and dense is None:
        raise ParameterError(
            "The 'dense' parameter must be the dense model when distill_weight > 0. Got None instead."
        )
    data = task.train_data if data is None else data
    batch_size = s.batch_size or task.batch_size
    steps_per_epoch = math.ceil(len(data) / batch_size)
    total = s.total_steps(steps_per_epoch)
    weight_decay = task.weight_decay if s.weight_decay is None else s.weight_decay
    optimizer = _optimizer(model, s, weight_decay)
    warmup_steps = round(s.warmup * total)
    callbacks = ([ZeroKeeper(model)] if s.keep_zeros else []) + list(after_step)
    teacher = dense.eval() if dense is not None and s.distill_weight > 0 else None
    batches = _shuffled_batches(data, batch_size, s.seed)
    start, running, lr = time.perf_counter(), 0.0, s.lr
    device = model_device(model)
    with seeded_training(model, s.seed, total=total, desc=desc, progress=progress) as bar:
        for step in range(total):
            lr = s.lr * lr_factor(s.lr_rule, step, total, warmup_steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            inputs, targets = next(batches)
            loss = _step(model, teacher, task, s, optimizer, inputs.to(device), targets.to(device))
            for callback in callbacks:
                callback(model, step + 1)
            value = float(loss)
            running = 0.98 * running + 0.02 * value if step else value
            bar.update(1)
    return RecoveryLog(
        steps=total,
        epochs=total / steps_per_epoch,
        loss=running,
        seconds=time.perf_counter() - start,
        final_lr=lr,
    )


def _step(model, teacher, task, s: RecoverySettings, optimizer, inputs, targets) -> torch.Tensor:
    """One optimiser step on the mixed loss; a NaN or infinite loss stops in one line."""
    optimizer.zero_grad(set_to_none=True)
    outputs = model(inputs)
    loss = task.loss(outputs, targets) if s.distill_weight < 1 else outputs.new_zeros(())
    if teacher is not None:
        with torch.no_grad():
            target = teacher(inputs)
        term = distillation_term(outputs, target, s.distill, s.temperature)
        loss = (1.0 - s.distill_weight) * loss + s.distill_weight * term
    if not torch.isfinite(loss.detach()):
        raise TrainingDiverged(
            f"Recovery on task '{task.name}' diverged: the loss became {float(loss.detach())}. "
            "Lower the learning rate, or check the data for NaN or infinite values."
        )
    loss.backward()
    optimizer.step()
    return loss.detach()
