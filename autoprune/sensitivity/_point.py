"""One point of a sensitivity curve: prune one unit alone to one amount, measure the damage.

Every other unit stays dense. After pruning, BatchNorm is recalibrated when the
model has it, and the model is evaluated on the measurement's validation subset.
A crash is a result: the point is reported with its error and the rest goes on.
Each point is served from the cache (:mod:`autoprune.sensitivity._cache`, JSON,
never pickle) when it holds a valid file.

Example:
    >>> from autoprune.tasks import get_task
    >>> from autoprune.sensitivity._measurement import Measurement
    >>> task = get_task("digits-mlp")
    >>> m = Measurement.of(task.new_model(), task, criterion="l1", granularity="unstructured",
    ...                    val_items=100, seed=0)
    >>> row = cached_point(None, m, "fc1", 0.5)
    >>> row["layer"], row["achieved"], row["error"]
    ('fc1', 0.5, '')
"""

from __future__ import annotations

import torch
from torch import nn

from autoprune.policy import AMOUNT_FIELD, FinetuneRecipe, LayerPolicy, Policy
from autoprune.sensitivity._cache import PointCache, normalise_row
from autoprune.sensitivity._measurement import Measurement


def _has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def _point_policy(m: Measurement, unit: str, amount: float, model: nn.Module) -> Policy:
    """The policy that prunes ``unit`` alone to ``amount``, without fine-tuning."""
    layer = LayerPolicy(
        granularity=m.granularity, criterion=m.criterion, **{AMOUNT_FIELD[m.granularity]: amount}
    )
    return Policy(
        layers={unit: layer},
        finetune=FinetuneRecipe(epochs=0, recalibrate_bn=_has_batchnorm(model)),
        seed=m.seed,
    )


_TRACED: dict[str, object] = {}  # per process: the run's working model, traced once


def _traced(m: Measurement):
    """The run's model with its channels traced once in this process (zeroed per point, then restored).

    None when structured units are heads or neurons (removed from a fresh copy instead).
    """
    from autoprune.prune._masking import MaskedChannels
    from autoprune.prune.units import has_transformer_blocks

    if m.key not in _TRACED:
        model = m.task.build_model()
        model.load_state_dict(m.state)
        model.eval()
        _TRACED.clear()  # one run at a time
        _TRACED[m.key] = (
            None if has_transformer_blocks(model) else MaskedChannels(model, m.task.example_input)
        )
    masked = _TRACED[m.key]
    if masked is not None:
        masked.restore()
    return masked


def _zeroed(m: Measurement, policy: Policy, masked, unit: str) -> tuple[nn.Module, float]:
    """``policy`` on the traced model (channels zeroed: what removal computes); the share removed."""
    from autoprune.prune import Calibration, Pruner
    from autoprune.training import recalibrate_batchnorm

    task = m.task
    pruner = Pruner(masked.model, policy, calibration=Calibration.from_task(task), units=masked)
    pruner.step()
    if policy.finetune.recalibrate_bn:
        recalibrate_batchnorm(masked.model, task.train_data, seed=policy.seed)
    masked.model.eval()
    return masked.model, 1.0 - masked.channels(unit) / masked.original_channels[unit]


def evaluate_point(m: Measurement, unit: str, amount: float) -> dict:
    """Prune ``unit`` alone to ``amount`` and evaluate on the validation subset (0: dense).

    Structured channels are zeroed on a model traced once per run and process
    (:class:`~autoprune.prune._masking.MaskedChannels`), not removed from a fresh trace.
    """
    from autoprune.training import evaluate, prune_and_finetune

    task = m.task
    masked = _traced(m) if m.granularity == "structured" else None
    model = task.build_model() if masked is None else masked.model
    if masked is None:
        model.load_state_dict(m.state)
    row = {
        "layer": unit,
        "sparsity": amount,
        "criterion": m.criterion,
        "granularity": m.granularity,
    }
    if amount == 0.0:
        ev = evaluate(model, task.val_data, task)
        return {**row, "metric": ev.metric, "loss": ev.loss, "achieved": 0.0, "error": ""}
    policy = _point_policy(m, unit, amount, model)
    try:
        if masked is not None:
            pruned, value = _zeroed(m, policy, masked, unit)
        else:
            outcome = prune_and_finetune(model, policy, task)
            pruned = outcome.model
            value = next(r for r in outcome.layers if r["layer"] == unit)[
                AMOUNT_FIELD[m.granularity]
            ]
        ev = evaluate(pruned, task.val_data, task)
    except Exception as exc:  # a crash is a result: report it, go on with the other points
        return {
            **row,
            "metric": float("nan"),
            "loss": float("nan"),
            "achieved": float("nan"),
            "error": f"{type(exc).__name__}: {exc}".splitlines()[0][:300],
        }
    return {**row, "metric": ev.metric, "loss": ev.loss, "achieved": value, "error": ""}


def cached_point(cache: PointCache | None, m: Measurement, unit: str, amount: float) -> dict:
    """:func:`evaluate_point` served from ``cache`` when it holds a valid file (None: no cache)."""
    if cache is None:
        return normalise_row(evaluate_point(m, unit, amount))
    fields = m.fields(unit, amount)
    row = cache.load(fields)
    if row is None:
        row = cache.store(fields, evaluate_point(m, unit, amount))
    return row


def unit_curve(
    cache: PointCache | None, m: Measurement, unit: str, grid, threads: int | None = None
) -> list[dict]:
    """The curve of one unit; ``threads`` pins torch's threads for the call (then restores them)."""
    from autoprune.introspect import torch_threads

    with torch_threads(threads or torch.get_num_threads()):
        return [cached_point(cache, m, unit, amount) for amount in grid]
