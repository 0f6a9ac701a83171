"""Prune and fine-tune a model as a policy says: the schedule drives the Pruner.

This is the one function search trials, ``apply`` and the final fine-tune all
call, so a policy means the same thing everywhere. The fine-tuning run is cut
into segments at the schedule's pruning events; masks are re-applied after
every optimizer step, so pruned weights are exactly zero throughout.

Example:
    >>> from autoprune.tasks import get_task
    >>> from autoprune.policy import Policy, FinetuneRecipe
    >>> task = get_task("digits-mlp")
    >>> policy = Policy.uniform(["fc1", "fc2"], 0.5, finetune=FinetuneRecipe(epochs=0))
    >>> outcome = prune_and_finetune(task.new_model(), policy, task)
    >>> [round(r["sparsity"], 2) for r in outcome.layers[:2]]
    [0.5, 0.5]
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

from torch import nn

from autoprune.policy import LayerPolicy, Policy
from autoprune.prune import Calibration, GroupShrink, HistoryEntry, Pruner
from autoprune.prune.depth import remove_policy_blocks
from autoprune.prune.inputs import select_policy_inputs
from autoprune.schedules import make_schedule
from autoprune.tasks import Task
from autoprune.training._evaluate import recalibrate_batchnorm
from autoprune.training._loop import train_model
from autoprune.training._settings import TrainingSettings


@dataclass
class PruneOutcome:
    """The pruned (and fine-tuned) model, the per-layer table, the structured history."""

    model: nn.Module
    layers: list[dict]
    history: list[HistoryEntry]
    finetune_steps: int
    seconds: float


def finetune_steps(policy: Policy, task: Task) -> int:
    """Optimizer steps of the policy's fine-tuning recipe on this task."""
    batch_size = policy.finetune.batch_size or task.batch_size
    return math.ceil(policy.finetune.epochs * math.ceil(len(task.train_data) / batch_size))


def prune_and_finetune(
    model: nn.Module,
    policy: Policy,
    task: Task,
    *,
    epochs: float | None = None,
    progress: bool = False,
    stats_batches: int = 8,
) -> PruneOutcome:
    """Prune ``model`` in place on the policy's schedule, fine-tuning with masks enforced.

    The policy's :attr:`~autoprune.policy.Policy.blocks` are removed first, then
    the input features it does not keep (:attr:`~autoprune.policy.Policy.inputs`).

    ``epochs`` overrides the policy's fine-tuning epochs (0: prune only, as the
    cheap screening of a search does; the schedule then collapses to its final
    amounts). A ``regularised`` schedule shrinks the units to be pruned
    (:class:`~autoprune.prune.GroupShrink`) after every step before its pruning
    event. BatchNorm is recalibrated at the end when the recipe asks for it.
    """
    start = time.perf_counter()
    recipe = policy.finetune
    if epochs is not None:
        policy = replace(policy, finetune=replace(recipe, epochs=epochs))
        recipe = policy.finetune
    total = finetune_steps(policy, task)
    schedule = make_schedule(policy.schedule)
    calibration = Calibration.from_task(task, batches=stats_batches)
    model, policy = remove_policy_blocks(model, policy, calibration.example_input)
    select_policy_inputs(model, policy)
    pruner = Pruner(model, policy, calibration=calibration)
    regularising = schedule.regularising(total)
    shrink = (
        [GroupShrink.of(pruner, strength=schedule.strength, steps=regularising)]
        if regularising
        else []
    )
    done = 0

    def train_until(step: int, segment: int) -> None:
        nonlocal done
        if step > done:
            train_model(
                model,
                task,
                settings=_segment_settings(policy, segment, steps=step - done),
                after_step=[pruner.masks] + (shrink if done < regularising else []),
                progress=progress,
                desc="fine-tune",
            )
            done = step

    for segment, (at_step, fraction) in enumerate(schedule.plan(total)):
        train_until(at_step, segment)
        pruner.step(lambda final, fraction=fraction: schedule.amount(final, fraction))
    train_until(total, segment=len(schedule.plan(total)))
    if recipe.recalibrate_bn:
        recalibrate_batchnorm(model, task.train_data, seed=policy.seed)
    pruner.masks.apply()
    model.eval()
    return PruneOutcome(
        model=model,
        layers=pruner.report(),
        history=pruner.history,
        finetune_steps=done,
        seconds=time.perf_counter() - start,
    )


def _segment_settings(policy: Policy, segment: int, *, steps: int) -> TrainingSettings:
    """The training settings of one fine-tuning segment (between two pruning events)."""
    recipe = policy.finetune
    return TrainingSettings(
        lr=recipe.lr, batch_size=recipe.batch_size, seed=policy.seed + segment, steps=steps
    )


def pin_structure(policy: Policy, layers: list[dict]) -> Policy:
    """A global structured ``policy`` turned local, with the channel ratios it reached in ``layers``.

    A global ranking picks each layer's share from the weights at pruning time, so
    pruning again after longer fine-tuning can end in another shape, with other
    MACs and another latency. Writing the reached ratios in (``layers`` is
    :attr:`PruneOutcome.layers` of a run of ``policy``) fixes the shape that was
    measured; which channels go is still decided by the criterion. Any other
    policy is returned unchanged.

    Example:
        >>> from autoprune.tasks import get_task
        >>> from autoprune.policy import FinetuneRecipe
        >>> task = get_task("digits-mlp")
        >>> policy = Policy.global_ranking(["fc1", "fc2"], 0.5, granularity="structured",
        ...                                finetune=FinetuneRecipe(epochs=0))
        >>> pinned = pin_structure(policy, prune_and_finetune(task.new_model(), policy, task).layers)
        >>> ratios = {n: lp.channel_ratio for n, lp in pinned.layers.items()}
        >>> pinned.scope, round(ratios["fc1"] * 128 + ratios["fc2"] * 64)  # 96 of 192 channels
        ('local', 96)
    """
    if not policy.ranks_channels_globally:
        return policy
    reached = {row["layer"]: row["channel_ratio"] for row in layers}
    missing = sorted(set(policy.layers) - set(reached))
    if missing:
        raise ValueError(f"The 'layers' table has no row for layer(s) {missing} of the policy.")
    return pin_ratios(policy, reached)


def pin_ratios(policy: Policy, reached: dict[str, float]) -> Policy:
    """:func:`pin_structure` from the channel ratios themselves (layer -> ratio reached).

    Example:
        >>> policy = Policy.global_ranking(["fc1", "fc2"], 0.5, granularity="structured")
        >>> pinned = pin_ratios(policy, {"fc1": 0.25, "fc2": 0.75})
        >>> pinned.scope, pinned.layers["fc1"].channel_ratio, pinned.layers["fc1"].criterion
        ('local', 0.25, 'l1')
    """
    if not policy.ranks_channels_globally:
        return policy
    pinned = {
        name: LayerPolicy(
            granularity="structured", criterion=lp.criterion, channel_ratio=reached[name]
        )
        for name, lp in policy.layers.items()
    }
    return replace(policy, layers=pinned, scope="local", global_sparsity=None)
