"""The Pruner: prune a model in place as a policy says, one schedule event at a time.

``step(scale)`` brings every layer to ``scale(final amount)``: structured layers
first (channels physically removed, the dependency graph keeping coupled layers
consistent), then unstructured and N:M masks on the weights that remain.
Pruning is monotone: a weight or channel once removed stays removed, so
iterative and gradual schedules only ever add to it. Between steps, the
:attr:`masks` keep pruned weights at exactly zero during fine-tuning.

Example:
    >>> import torch
    >>> from autoprune.policy import Policy
    >>> from autoprune.tasks.models import DigitsMLP
    >>> model = DigitsMLP()
    >>> calibration = Calibration(torch.zeros(1, 64))  # magnitude criteria need no data
    >>> pruner = Pruner(model, Policy.uniform(["fc1", "fc2"], 0.5), calibration=calibration)
    >>> pruner.step()
    >>> [round(r["sparsity"], 3) for r in pruner.report()[:2]]
    [0.5, 0.5]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from autoprune.errors import PruningError
from autoprune.introspect import prunable_layers
from autoprune.policy import LayerPolicy, Policy, parse_nm
from autoprune.prune._allocate import cap_count, channels_to_remove, global_counts, local_count
from autoprune.prune._calibration import Calibration
from autoprune.prune._criteria import Criterion, get_criterion, statistics_needed
from autoprune.prune._layer_report import LayerSize, layer_row
from autoprune.prune._masks import MaskSet, nm_mask, unstructured_mask
from autoprune.prune._statistics import Stats, collect_statistics
from autoprune.prune.units import HistoryEntry, StructuredUnits, structured_units


def _identity(final: float) -> float:
    return final


@dataclass(frozen=True)
class Plan:
    """Channels to remove now per group, and weights masked per layer, at one schedule point."""

    channels: dict[str, int]
    weights: dict[str, int]


class Pruner:
    """Applies ``policy`` to ``model`` (in place).

    ``calibration`` gives the example input that traces the model for structured
    pruning and, for data-driven criteria, the batches their statistics come from.
    ``units`` are structured units already traced on ``model`` (e.g. a
    :class:`~autoprune.prune._masking.MaskedChannels` reused across candidates);
    ``statistics`` are the criteria's statistics already collected on ``model``
    as it is now (used for the first step only: later steps see a pruned model).
    """

    def __init__(
        self,
        model: nn.Module,
        policy: Policy,
        *,
        calibration: Calibration,
        units: StructuredUnits | None = None,
        statistics: Stats | None = None,
    ) -> None:
        self.model = model
        self.policy = policy
        self.calibration = calibration
        self.masks = MaskSet()
        self.steps_done = 0
        self.layers = prunable_layers(model)
        for name in policy.layers:
            if name not in self.layers:
                raise PruningError(
                    f"The policy names layer '{name}', which the model does not have. "
                    f"Prunable layers: {', '.join(self.layers)}."
                )
        self._original = {name: LayerSize.of(layer) for name, layer in self.layers.items()}
        self._criteria: dict[str, Criterion] = {}
        self._scores_cache: dict[str, dict[str, torch.Tensor]] = {}
        self._given_statistics = statistics
        self.units: StructuredUnits | None = None
        self.group_policy: dict[str, LayerPolicy] = {}
        structured = {n: lp for n, lp in policy.layers.items() if lp.granularity == "structured"}
        if structured:
            self.units = units or structured_units(model, calibration.example_input)
            self.group_policy = self._groups_of(structured)

    # ------------------------------------------------------------------ set-up helpers

    def _groups_of(self, structured: dict[str, LayerPolicy]) -> dict[str, LayerPolicy]:
        """Map structured layer entries to their dependency groups; coupled layers must agree."""
        groups: dict[str, tuple[str, LayerPolicy]] = {}
        for name, lp in structured.items():
            group = self.units.group_of(name)
            if group in groups and groups[group][1] != lp:
                other = groups[group][0]
                raise PruningError(
                    f"Layers '{other}' and '{name}' are coupled (they share channels through "
                    f"group '{group}') but the policy gives them different settings; give them one."
                )
            groups[group] = (name, lp)
        return {group: lp for group, (_, lp) in groups.items()}

    def criterion(self, name: str) -> Criterion:
        if name not in self._criteria:
            self._criteria[name] = get_criterion(name, seed=self.policy.seed)
        return self._criteria[name]

    def _statistics(self, criteria: set[str]) -> dict[str, dict[str, torch.Tensor]]:
        needs = set(statistics_needed(criteria))
        if self._given_statistics is not None and self.steps_done == 0:
            return self._given_statistics
        return collect_statistics(
            self.model,
            self.layers,
            self.calibration,
            needs=needs,
            seed=self.policy.seed + self.steps_done,
        )

    # ------------------------------------------------------------------ pruning

    def step(self, scale: Callable[[float], float] = _identity) -> None:
        """Prune every layer to ``scale(final amount)`` (identity: the policy's final amounts)."""
        plan = self.plan(scale)
        for group, n in plan.channels.items():
            if n > 0:
                order = torch.sort(self._channel_scores()[group], stable=True).indices
                self.units.remove(group, order[:n].tolist())
        self._scores_cache.clear()  # structured removal changed the shapes
        if self.mask_layers:
            self._apply_masks(self.plan(scale).weights)
        self.steps_done += 1
        self._scores_cache.clear()

    @property
    def mask_layers(self) -> dict[str, LayerPolicy]:
        return {n: lp for n, lp in self.policy.layers.items() if lp.granularity != "structured"}

    def plan(self, scale: Callable[[float], float] = _identity) -> Plan:
        """What :meth:`step` would remove now: more channels per group, weights per mask layer.

        Nothing is changed; the scores are computed once per step and reused, so the
        search can ask for many scales (e.g. to fit a budget) cheaply.
        """
        channels = self._plan_channels(scale) if self.group_policy else {}
        weights = (
            self._plan_weights(scale) if self.mask_layers and not any(channels.values()) else {}
        )
        return Plan(channels=channels, weights=weights)

    def max_global_amount(self) -> float:
        """The largest ``global_sparsity`` the per-layer caps allow (exactly, in whole units)."""
        if self.group_policy:
            sizes = dict(self.units.original_channels)
            caps = {g: self.group_policy[g].max_sparsity for g in sizes}
        else:
            sizes = {n: self.layers[n].weight.numel() for n in self.mask_layers}
            caps = {n: self.policy.layers[n].max_sparsity for n in sizes}
        allowed = sum(
            cap_count(n, caps[u], min_kept=self.policy.min_kept) for u, n in sizes.items()
        )
        return allowed / max(1, sum(sizes.values()))

    def amounts(self, scale: Callable[[float], float] = _identity) -> dict[str, float]:
        """Per-unit amounts the plan reaches: channel ratio per group, sparsity per mask layer."""
        plan = self.plan(scale)
        units = self.units
        out = {
            g: (units.original_channels[g] - units.channels(g) + n) / units.original_channels[g]
            for g, n in plan.channels.items()
        }
        for name, n in plan.weights.items():
            out[name] = n / self.layers[name].weight.numel()
        return out

    def _channel_scores(self) -> dict[str, torch.Tensor]:
        if "channels" not in self._scores_cache:
            stats = self._statistics({lp.criterion for lp in self.group_policy.values()})
            scores = {}
            for group, lp in self.group_policy.items():
                s = self.units.channel_scores(group, self.criterion(lp.criterion), stats)
                if (
                    self.policy.scope == "global"
                    and self.criterion(lp.criterion).normalise_channels
                ):
                    s = s / s.mean().clamp_min(1e-30)
                scores[group] = s
            self._scores_cache["channels"] = scores
        return self._scores_cache["channels"]

    def _weight_scores(self) -> dict[str, torch.Tensor]:
        if "weights" not in self._scores_cache:
            layers = self.mask_layers
            stats = self._statistics({lp.criterion for lp in layers.values()})
            self._scores_cache["weights"] = {
                name: self._scores(name, lp, stats) for name, lp in layers.items()
            }
        return self._scores_cache["weights"]

    def _plan_channels(self, scale) -> dict[str, int]:
        units = self.units
        already = {g: units.original_channels[g] - units.channels(g) for g in self.group_policy}
        if self.policy.scope == "global":
            original_total = sum(units.original_channels[g] for g in self.group_policy)
            target = round(scale(self.policy.global_sparsity) * original_total)
            caps = {
                g: cap_count(
                    units.original_channels[g], lp.max_sparsity, min_kept=self.policy.min_kept
                )
                - already[g]
                for g, lp in self.group_policy.items()
            }
            return global_counts(
                self._channel_scores(), total=max(0, target - sum(already.values())), caps=caps
            )
        extra = {}
        for g, lp in self.group_policy.items():
            wanted = channels_to_remove(
                units.original_channels[g],
                scale(lp.channel_ratio),
                min_kept=self.policy.min_kept,
                round_to=self.policy.round_to,
            )
            extra[g] = max(0, wanted - already[g])
        return extra

    def _scores(self, name: str, lp: LayerPolicy, stats) -> torch.Tensor:
        layer = self.layers[name]
        scores = (
            self.criterion(lp.criterion)
            .weight_scores(layer, stats.get(name, {}))
            .double()
            .to(layer.weight.device)
        )
        # monotone pruning: what is already zero goes first and stays pruned
        return scores.masked_fill(layer.weight.detach() == 0, float("-inf"))

    def _plan_weights(self, scale) -> dict[str, int]:
        """Weights to mask per layer (N:M layers: the number their pattern removes)."""
        layers, scores = self.mask_layers, self._weight_scores()
        if self.policy.scope == "global":
            total = sum(s.numel() for s in scores.values())
            caps = {
                n: cap_count(s.numel(), layers[n].max_sparsity, min_kept=self.policy.min_kept)
                for n, s in scores.items()
            }
            return global_counts(
                scores, total=round(scale(self.policy.global_sparsity) * total), caps=caps
            )
        counts = {}
        for name, lp in layers.items():
            numel = scores[name].numel()
            if lp.granularity == "nm":
                n, m = parse_nm(lp.nm, layer=name)
                counts[name] = numel - numel * n // m
            else:
                counts[name] = local_count(numel, scale(lp.sparsity), min_kept=self.policy.min_kept)
        return counts

    def _apply_masks(self, counts: dict[str, int]) -> None:
        scores = self._weight_scores()
        self.masks.clear()
        for name, lp in self.mask_layers.items():
            layer = self.layers[name]
            if lp.granularity == "nm":
                n, m = parse_nm(lp.nm, layer=name)
                mask = nm_mask(scores[name], n, m, layer=name)
            else:
                mask = unstructured_mask(scores[name], counts[name])
            self.masks.set(name, layer, mask)
        self.masks.apply()

    # ------------------------------------------------------------------ results

    def report(self) -> list[dict]:
        """What was achieved, per prunable layer (every layer: neighbours of pruned layers shrink too).

        ``sparsity`` is the fraction of the layer's original weight elements that are
        gone (removed or zero); ``channel_ratio`` the fraction of output channels removed.
        """
        return [
            layer_row(name, layer, self._original[name], self.policy)
            for name, layer in self.layers.items()
        ]

    @property
    def history(self) -> list[HistoryEntry]:
        """Structured pruning history (empty when nothing was removed physically)."""
        return self.units.history if self.units else []
