"""Step 2 of the final model: recover each shortlisted candidate fully, choose on validation.

The recovery is the policy's own (:func:`~autoprune.training.finetune_policy`:
distillation from the dense model for the search's one-shot policies),
``final_epochs`` long.

A global structured ranking is first pinned to the channel ratios it reaches
on the dense model (:func:`~autoprune.training.pin_structure`): the shape whose
costs were checked is the shape that gets fine-tuned and shipped.

With the space's ``finetune.from_scratch``, each shortlisted policy is also
trained from a fresh initialisation (:func:`~autoprune.training.train_with_policy`)
under the gradual schedule, for the dense model's epochs plus ``final_epochs``
(the same total training as the dense model and its fine-tune), and competes
with the fine-tuned ones on validation.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pandas as pd

from autoprune.final._rules import choose
from autoprune.final._summary import Candidate
from autoprune.policy import Policy
from autoprune.training import (
    PruneOutcome,
    evaluate,
    finetune_policy,
    pin_structure,
    prune_and_finetune,
    train_with_policy,
)


class Shapes:
    """Front candidates pruned from the dense model without fine-tuning: the shapes the budgets saw.

    Each is pruned once, on first use.
    """

    def __init__(self, ctx, policies: dict[int, Policy]) -> None:
        self.ctx, self.policies = ctx, policies
        self._outcomes: dict[int, PruneOutcome] = {}

    def __call__(self, number: int) -> PruneOutcome:
        if number not in self._outcomes:
            self._outcomes[number] = prune_and_finetune(
                self.ctx.fresh_dense(), self.policies[number], self.ctx.task, epochs=0
            )
        return self._outcomes[number]

    def replace(self, number: int, policy: Policy) -> None:
        """Candidate ``number`` runs ``policy`` from now on (pruned afresh on next use)."""
        self.policies[number] = policy
        self._outcomes.pop(number, None)


@dataclass(frozen=True)
class Tuned:
    """A shortlisted candidate after its full fine-tune: its row, the policy it ran, the model."""

    candidate: Candidate
    policy: Policy
    outcome: PruneOutcome


def final_policy(policy: Policy, shapes: Shapes, number: int, epochs: float) -> Policy:
    """The policy the final fine-tune runs: pinned when it ranks channels globally, ``epochs`` long."""
    if policy.ranks_channels_globally:
        # fine-tuning longer must not move a global ranking to a shape the budgets never saw
        policy = pin_structure(policy, shapes(number).layers)
    return replace(policy, finetune=replace(policy.finetune, epochs=epochs))


def finetune_candidates(
    ctx, candidates: pd.DataFrame, shapes: Shapes, *, epochs: float, progress: bool
) -> list[Tuned]:
    """Each shortlisted front row pruned from the dense model, fine-tuned for ``epochs``, validated."""
    tuned = []
    for row in candidates.itertuples():
        number = int(row.number)
        searched = shapes.policies[number]
        policy = final_policy(searched, shapes, number, epochs)
        outcome = finetune_policy(
            ctx.fresh_dense(), policy, ctx.task, dense=ctx.dense, progress=progress
        )
        runs = [("trained", policy, outcome)]
        if ctx.space.finetune.from_scratch:
            runs.append(("scratch", *_from_scratch(ctx, policy, epochs, progress=progress)))
        for start, ran, out in runs:
            candidate = Candidate(
                number=number,
                val_metric=evaluate(out.model, ctx.task.val_data, ctx.task).metric,
                search_val_metric=float(row.val_metric),
                cost=float(row.cost),
                pinned=searched.ranks_channels_globally,
                start=start,
            )
            tuned.append(Tuned(candidate, ran, out))
    return tuned


def _from_scratch(ctx, policy: Policy, epochs: float, *, progress: bool):
    """``policy`` as trained from a fresh initialisation (gradual schedule, the task's learning
    rate, the dense epochs plus ``epochs``) and the outcome: (policy, outcome)."""
    recipe = replace(policy.finetune, epochs=ctx.task.epochs + epochs, lr=ctx.task.lr)
    policy = replace(policy, schedule=ctx.schedule("gradual"), finetune=recipe)
    outcome = train_with_policy(
        ctx.task, policy, epochs=recipe.epochs, lr=recipe.lr, seed=ctx.setup.seed, progress=progress
    )
    return policy, outcome


def choose_tuned(tuned: list[Tuned], rule: str, *, tolerance: float) -> Tuned:
    """The candidate the rule picks on its fully trained validation metric (the first of a tie)."""
    frame = pd.DataFrame(
        [
            {"number": i, "val_metric": t.candidate.val_metric, "cost": t.candidate.cost}
            for i, t in enumerate(tuned)
        ]
    )
    return tuned[choose(frame, rule, tolerance=tolerance)]
