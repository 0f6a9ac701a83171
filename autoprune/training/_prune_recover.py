"""Prune, then recover: how the search's best candidates and the final model are trained back.

The policy's final amounts are applied at once (structured units removed,
unstructured and N:M weights masked), then the pruned model is trained back by
:func:`~autoprune.training.recover` (distillation from the dense model as the
settings say); weights pruned to zero stay zero.

Example:
    >>> from autoprune.policy import Policy
    >>> from autoprune.tasks import get_task
    >>> from autoprune.training import RecoverySettings, dense_model
    >>> task = get_task("digits-mlp")
    >>> dense = dense_model(task, progress=False).model
    >>> outcome = prune_and_recover(task.new_model(), Policy.uniform(["fc1"], 0.5), task,
    ...                             dense=dense, settings=RecoverySettings(steps=2))
    >>> outcome.finetune_steps, round(outcome.layers[0]["sparsity"], 2)
    (2, 0.5)
"""

from __future__ import annotations

from torch import nn

from autoprune.policy import Policy
from autoprune.tasks import Task
from autoprune.training._prune_finetune import PruneOutcome, prune_and_finetune
from autoprune.training._recovery import RecoverySettings, recover


def prune_and_recover(
    model: nn.Module,
    policy: Policy,
    task: Task,
    *,
    dense: nn.Module | None,
    settings: RecoverySettings,
    progress: bool = False,
) -> PruneOutcome:
    """Prune ``model`` in place as ``policy`` says, then recover it with ``settings``."""
    outcome = prune_and_finetune(model, policy, task, epochs=0)
    log = recover(outcome.model, dense, task, settings, progress=progress)
    outcome.model.eval()
    outcome.finetune_steps = log.steps
    outcome.seconds += log.seconds
    return outcome


def finetune_policy(
    model: nn.Module,
    policy: Policy,
    task: Task,
    *,
    dense: nn.Module | None,
    epochs: float | None = None,
    progress: bool = False,
) -> PruneOutcome:
    """Prune and train back as the policy's recipe says (``epochs`` overrides its length).

    A one-shot policy whose recipe distils (``distill_weight`` > 0) is recovered
    (:func:`prune_and_recover`); any other runs its schedule with masked
    fine-tuning (:func:`~autoprune.training.prune_and_finetune`). This is the one
    way search recoveries, the final model and ``apply --finetune`` train a policy back.
    """
    recipe = policy.finetune
    epochs = recipe.epochs if epochs is None else epochs
    distils = recipe.distill_weight > 0 and dense is not None and epochs > 0
    if policy.schedule.name != "one-shot" or not distils:
        return prune_and_finetune(model, policy, task, epochs=epochs, progress=progress)
    settings = RecoverySettings(
        epochs=epochs,
        lr=recipe.lr,
        batch_size=recipe.batch_size,
        distill_weight=recipe.distill_weight,
        distill="kl" if task.metric_name == "accuracy" else "cosine",
        seed=policy.seed,
    )
    return prune_and_recover(model, policy, task, dense=dense, settings=settings, progress=progress)
