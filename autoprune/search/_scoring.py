"""Build and score many candidates fast: one model, traced once, restored between candidates.

The :class:`CandidateScorer` of a search keeps one working copy of the dense
model. For each candidate it restores the dense weights, prunes the copy as the
policy says (channels zeroed through :class:`MaskedChannels`, traced once;
unstructured and N:M units masked; attention heads and neurons, which need no
trace, removed from a fresh copy; a candidate that drops input features is
pruned on a fresh copy too, as its first layer narrows), re-estimates BatchNorm and measures
the distance of its outputs from the dense model's (:mod:`._fitness`). The
criteria's statistics of the dense model are collected once per set of needs.
Costs come from the analytic cost model at the amounts the candidate reached
(exact for parameters and MACs; the latency model for latency).

Example:
    >>> from autoprune.policy import Policy
    >>> from autoprune.search._context import example_context
    >>> ctx = example_context()
    >>> scorer = CandidateScorer(ctx)
    >>> built = scorer.build(Policy.uniform(["fc1", "fc2", "fc3"], 0.5))
    >>> round(built.reached["fc1"], 2), built.distance(items=64) > 0
    (0.5, True)
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from torch import nn

from autoprune.policy import Policy
from autoprune.prune import Calibration, Pruner, statistics_needed
from autoprune.prune._masking import MaskedChannels
from autoprune.prune._statistics import Stats, collect_statistics
from autoprune.search._context import SearchContext
from autoprune.search._fitness import Fitness
from autoprune.training import evaluate


@dataclass
class Built:
    """A candidate pruned on the working copy: what it reached and what it costs."""

    model: nn.Module
    reached: dict[str, float]  # per-unit amount reached (sparsity, or share of units removed)
    estimates: dict[str, float]  # the budgeted costs at those amounts
    costs: dict[str, float]  # parameters, MACs, bytes (and latency) at those amounts
    fitness: Fitness

    def distance(self, *, items: int) -> float:
        return self.fitness.distance(self.model, items=items)


class CandidateScorer:
    """The working copy of the dense model, and the scores of the candidates built on it."""

    def __init__(self, ctx: SearchContext) -> None:
        self.ctx = ctx
        self.model = copy.deepcopy(ctx.dense).eval()
        self._dense_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self._masked: MaskedChannels | None = None
        from autoprune.prune.units import has_transformer_blocks

        self._by_copy = has_transformer_blocks(ctx.dense)  # heads are removed, not zeroed
        self.calibration = Calibration.from_task(ctx.task)
        self.fitness = Fitness(ctx.dense, ctx.task, ctx.space.fitness, seed=ctx.setup.seed)
        self._statistics: dict[frozenset, Stats] = {}
        self._skipped: list[
            tuple[nn.Module, str, nn.Module]
        ] = []  # (parent, name, block) to put back

    def _units(self, policy: Policy) -> MaskedChannels | None:
        """Channels zeroed on the working copy; None when the Pruner finds its own units."""
        structured = any(lp.granularity == "structured" for lp in policy.layers.values())
        if not structured or self._by_copy:
            return None
        if self._masked is None:
            self._masked = MaskedChannels(self.model, self.ctx.example_input)
        return self._masked

    def _restore(self) -> None:
        for parent, name, block in reversed(self._skipped):
            parent._modules[name] = block
        self._skipped.clear()
        if self._masked is not None:
            self._masked.restore()
        elif self._by_copy:
            self.model = copy.deepcopy(self.ctx.dense).eval()
        else:
            self.model.load_state_dict(self._dense_state)

    def _stats(self, policy: Policy) -> Stats:
        needs = statistics_needed(lp.criterion for lp in policy.layers.values())
        if needs not in self._statistics:
            from autoprune.introspect import prunable_layers

            self._restore()
            self._statistics[needs] = collect_statistics(
                self.model,
                prunable_layers(self.model),
                self.calibration,
                needs=set(needs),
                seed=policy.seed,
            )
        return self._statistics[needs]

    def build(self, policy: Policy) -> Built:
        """Prune the working copy as ``policy`` says (from the dense weights), BatchNorm re-estimated."""
        if policy.inputs is not None:
            return self._built(self._narrowed(policy), policy)
        stats = self._stats(policy)
        self._restore()  # heads and neurons: a fresh copy, as their removal shrinks it
        # made after the restore: the channel masks keep the weights they find as the dense ones
        units = self._units(policy)
        rest = self._skip_blocks(policy)
        pruner = Pruner(
            self.model, rest, calibration=self.calibration, units=units, statistics=stats
        )
        pruner.step()
        return self._built(pruner, policy)

    def _narrowed(self, policy: Policy) -> Pruner:
        """``policy`` applied to a fresh copy of the dense model that reads only ``policy.inputs``
        (the working copy is left as it is; the criteria's statistics are collected anew)."""
        from autoprune.prune.depth import remove_policy_blocks
        from autoprune.prune.inputs import select_policy_inputs

        model = copy.deepcopy(self.ctx.dense).eval()
        model, rest = remove_policy_blocks(model, policy, self.ctx.example_input, check=False)
        pruner = Pruner(select_policy_inputs(model, rest), rest, calibration=self.calibration)
        pruner.step()
        return pruner

    def _built(self, pruner: Pruner, policy: Policy) -> Built:
        reached = self._reached(pruner, policy)
        at = self.ctx.reached_policy(policy, reached)
        estimates, costs = self.ctx.estimate(at), self.ctx.costs(at)
        self.fitness.prepare(pruner.model)
        pruner.model.eval()
        return Built(pruner.model, reached, estimates, costs, self.fitness)

    def _skip_blocks(self, policy: Policy) -> Policy:
        """The working copy without ``policy.blocks`` (put back by :meth:`_restore`); the policy
        of the rest. Channel scores still count the skipped blocks' weights (one trace for all)."""
        from autoprune.prune.depth import remove_policy_blocks

        for block in policy.blocks:
            parent_name, _, name = block.rpartition(".")
            parent = self.model.get_submodule(parent_name)
            self._skipped.append((parent, name, parent._modules[name]))
        _, rest = remove_policy_blocks(
            self.model, policy, self.calibration.example_input, check=False
        )
        return rest

    @staticmethod
    def _reached(pruner: Pruner, policy: Policy) -> dict[str, float]:
        if pruner.units is not None:
            units = pruner.units
            return {
                g: (units.original_channels[g] - units.channels(g)) / units.original_channels[g]
                for g in pruner.group_policy
            }
        return {
            name: float((layer.weight == 0).float().mean())
            for name, layer in pruner.layers.items()
            if name in policy.layers
        }

    def validation_metric(self, built: Built, *, items: int) -> float:
        """The task's metric of a built candidate on ``items`` validation items (a seeded subset)."""
        return evaluate(built.model, self.ctx.task.val_data, self.ctx.task, max_items=items).metric
