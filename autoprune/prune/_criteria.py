"""Criteria: how important each weight, neuron or channel is. Higher means keep.

A criterion is a small object with one job, :meth:`Criterion.weight_scores`:
a score per weight element, the shape of the layer's weight. Channel scores for
structured pruning are derived from these by summing over a dependency group
(see :mod:`autoprune.prune.units`), so every criterion works at every granularity.
Each criterion is addressed by a short name (the ones policies use).

=============  ======================================================
``l1``         ``|w|`` (channels: sum of ``|w|``, the L1 norm)
``l2``         ``w^2`` (channels: sum of ``w^2``, the squared L2 norm)
``random``     seeded uniform noise: the control every comparison needs
``taylor``     ``|w * dL/dw|`` summed over a few batches
``obd``        ``w^2 * F / 2`` with ``F`` the diagonal empirical Fisher
``activation`` ``|w_ij| * mean|x_j|`` (channels: mean ``|y_c|`` of the output)
``lamp``       ``w^2`` normalised by the sum of the larger ``w^2`` of its layer
``wanda``      ``|w_ij| * ||x_j||`` (Wanda: weight times input feature norm)
``flap``       ``w_ij^2 * Var(x_j)`` (FLAP's fluctuation; units: inputs only)
=============  ======================================================

``wanda`` and ``flap`` are the calibration-based criteria of the LLM pruning
literature (Sun et al., 2023; An et al., 2024): both weigh a weight by the
activations of its input feature over a few calibration batches. ``flap``
scores a structured unit (channel, head, neuron) by the layers that read it
only: the fluctuation its removal causes in their inputs.

Example:
    >>> import torch
    >>> layer = torch.nn.Linear(3, 1)
    >>> with torch.no_grad(): _ = layer.weight.copy_(torch.tensor([[0.1, -2.0, 0.5]]))
    >>> get_criterion("l1").weight_scores(layer, {}).tolist()
    [[0.10000000149011612, 2.0, 0.5]]
"""

from __future__ import annotations

import torch
from torch import nn

from autoprune.errors import PruningError
from autoprune.policy import CRITERIA, CRITERION_ALIASES


class Criterion:
    """Base class: ``weight_scores(layer, stats) -> tensor like layer.weight``."""

    name = "criterion"
    needs: frozenset[str] = frozenset()
    #: channel scores of different groups are put on one scale before a global ranking
    normalise_channels = True
    #: structured units are scored by the layers that read them only (not the ones that make them)
    units_from_inputs = False

    def weight_scores(self, layer: nn.Module, stats: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def channel_scores_from_output(self, stats: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """Per-output-channel scores measured directly (activation); None means derive from weights."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class L1Magnitude(Criterion):
    name = "l1"

    def weight_scores(self, layer, stats):
        return layer.weight.detach().abs()


class L2Magnitude(Criterion):
    name = "l2"

    def weight_scores(self, layer, stats):
        return layer.weight.detach().pow(2)


class RandomCriterion(Criterion):
    """Uniform noise from a generator seeded by the policy's seed (reproducible)."""

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.generator = torch.Generator().manual_seed(seed)

    def weight_scores(self, layer, stats):
        return torch.rand(layer.weight.shape, generator=self.generator)


class TaylorCriterion(Criterion):
    name = "taylor"
    needs = frozenset({"taylor"})

    def weight_scores(self, layer, stats):
        return stats["taylor"]


class OBDCriterion(Criterion):
    """Optimal Brain Damage: saliency ``w^2 * H_ii / 2`` with ``H_ii`` from the diagonal Fisher."""

    name = "obd"
    needs = frozenset({"fisher"})

    def weight_scores(self, layer, stats):
        return 0.5 * layer.weight.detach().pow(2) * stats["fisher"]


def per_input(layer: nn.Module, values: torch.Tensor) -> torch.Tensor:
    """One value per input feature (or channel) of ``layer``, shaped to broadcast over its weight."""
    weight = layer.weight
    if weight.dim() > 2 and getattr(layer, "groups", 1) > 1 and values.numel() != weight.shape[1]:
        values = values.view(layer.groups, -1)[0]
    return values.view([1, -1] + [1] * (weight.dim() - 2))


class ActivationCriterion(Criterion):
    """Weights scale with the activity of their input; channels with their output activity."""

    name = "activation"
    needs = frozenset({"act_in", "act_out"})

    def weight_scores(self, layer, stats):
        return layer.weight.detach().abs() * per_input(layer, stats["act_in"])

    def channel_scores_from_output(self, stats):
        return stats.get("act_out")


class LAMPCriterion(Criterion):
    """Layer-adaptive magnitude (Lee et al., 2021): comparable across layers for global ranking."""

    name = "lamp"
    normalise_channels = False

    def weight_scores(self, layer, stats):
        return lamp_normalise(layer.weight.detach().pow(2))


class WandaCriterion(Criterion):
    """Wanda (Sun et al., 2023): ``|w_ij|`` times the L2 norm of input feature j over the calibration data."""

    name = "wanda"
    needs = frozenset({"act_sq"})

    def weight_scores(self, layer, stats):
        return layer.weight.detach().abs() * per_input(layer, stats["act_sq"].clamp_min(0).sqrt())


class FlapCriterion(Criterion):
    """FLAP's fluctuation (An et al., 2024): ``w_ij^2`` times the variance of input feature j.

    Summed over the columns a structured unit feeds, it is the fluctuation its
    removal leaves in the next layer's output; so units are scored by the layers
    that read them (:attr:`units_from_inputs`).
    """

    name = "flap"
    needs = frozenset({"act_var"})
    units_from_inputs = True

    def weight_scores(self, layer, stats):
        return layer.weight.detach().pow(2) * per_input(layer, stats["act_var"].clamp_min(0))


def lamp_normalise(scores: torch.Tensor) -> torch.Tensor:
    """Each score divided by the sum of the scores not smaller than it (in its tensor)."""
    flat = scores.flatten()
    sorted_scores, order = torch.sort(flat, stable=True)
    # sum of sorted_scores[i:] for each i
    tail = sorted_scores.flip(0).cumsum(0).flip(0)
    normalised = torch.empty_like(flat)
    normalised[order] = sorted_scores / tail.clamp_min(1e-30)
    return normalised.view_as(scores)


_CLASSES = {
    cls.name: cls
    for cls in (
        L1Magnitude,
        L2Magnitude,
        RandomCriterion,
        TaylorCriterion,
        OBDCriterion,
        ActivationCriterion,
        LAMPCriterion,
        WandaCriterion,
        FlapCriterion,
    )
}
assert set(_CLASSES) == set(CRITERIA), "policy.CRITERIA and the criterion classes must agree"


def statistics_needed(criteria) -> frozenset[str]:
    """The statistics (``taylor``, ``act_in``, ...) the criteria named in ``criteria`` need from data.

    Example:
        >>> sorted(statistics_needed(["l1", "taylor", "taylor"])), statistics_needed([])
        (['taylor'], frozenset())
    """
    return frozenset().union(*(get_criterion(name).needs for name in criteria))


def get_criterion(name: str, *, seed: int = 0) -> Criterion:
    """The criterion called ``name`` (aliases: magnitude, gradient, hessian)."""
    key = CRITERION_ALIASES.get(name, name)
    if key not in _CLASSES:
        raise PruningError(f"Unknown criterion {name!r}; expected one of {', '.join(CRITERIA)}.")
    return _CLASSES[key](seed) if key == "random" else _CLASSES[key]()
