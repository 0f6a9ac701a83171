"""Sparsity-inducing regularisation as proximal steps: group lasso on units, L1 on weights.

Train-time pruning in the manner of Network Slimming (Liu et al., 2017) and
group-lasso pruning: before the pruning event of a ``regularised`` schedule,
every optimiser step is followed by a *proximal* shrink that pulls whole units
towards zero, so the training decides which units stop mattering and the
criterion then removes those. The shrink does not depend on the optimiser
(Adam would rescale a penalty's gradient away):

* a structured unit (channel, neuron, head) of a group the policy prunes: its
  parameters in the layers that make it (weight rows and bias of its output
  layers, its BatchNorm/LayerNorm scale and shift) as one vector ``v``, scaled
  by ``max(0, 1 - eta / ||v||)`` (group soft-thresholding);
* a weight of an unstructured or N:M layer: ``sign(w) * max(0, |w| - eta)``.

``eta`` per step is ``strength`` times the unit's (weight's) mean norm when
regularisation starts, divided by the number of regularising steps: with
strength 1 the shrinks add up to the average unit's whole norm, which only
units the loss keeps pushing back survive. Layers whose unit rows are not
contiguous (a fused query/key/value projection, the query projection of
grouped-query attention) are pruned as usual but not shrunk.

Example:
    >>> import torch
    >>> from autoprune.policy import Policy
    >>> from autoprune.prune import Calibration, Pruner
    >>> from autoprune.tasks.models import DigitsMLP
    >>> model = DigitsMLP()
    >>> policy = Policy.uniform(["fc1"], 0.5, granularity="structured")
    >>> pruner = Pruner(model, policy, calibration=Calibration(torch.zeros(1, 64)))
    >>> shrink = GroupShrink.of(pruner, strength=1.0, steps=4)
    >>> before = model.fc1.weight.norm(dim=1)
    >>> for step in range(4):
    ...     shrink(model, step + 1)
    >>> bool((model.fc1.weight.norm(dim=1) < before).all()), int((model.fc1.weight.norm(dim=1) == 0).sum()) > 0
    (True, True)
"""

from __future__ import annotations

import torch
from torch import nn


class GroupShrink:
    """Proximal group-lasso / L1 shrink steps (an ``after_step`` callback); see the module docstring.

    ``groups`` maps a group name to the parameters that make its units, each
    viewed as ``(units, -1)``; ``weights`` are the parameters shrunk element-wise.
    """

    def __init__(
        self,
        groups: dict[str, list[nn.Parameter]],
        weights: list[nn.Parameter],
        *,
        units: dict[str, int],
        strength: float,
        steps: int,
    ) -> None:
        self.groups, self.weights, self.units = groups, weights, units
        steps = max(1, steps)
        self._group_eta = {
            g: strength * float(self._norms(g).mean()) / steps for g in groups if units[g]
        }
        self._weight_eta = [strength * float(p.detach().abs().mean()) / steps for p in weights]

    @classmethod
    def of(cls, pruner, *, strength: float, steps: int) -> GroupShrink:
        """The shrink of what ``pruner``'s policy prunes (its structured groups and mask layers)."""
        modules = dict(pruner.model.named_modules())
        groups, sizes = {}, {}
        for name in pruner.group_policy:
            group = pruner.units.groups[name]
            n = pruner.units.channels(name)
            params = []
            for layer in group.out_layers:
                if group.out_factor(layer) == group.unit_size:
                    params += _rows(modules.get(layer), n * group.unit_size)
            for layer in group.norm_layers:
                params += _rows(modules.get(layer), n)
            if params:
                groups[name], sizes[name] = params, n
        weights = [pruner.layers[name].weight for name in pruner.mask_layers]
        return cls(groups, weights, units=sizes, strength=strength, steps=steps)

    def _norms(self, group: str) -> torch.Tensor:
        n = self.units[group]
        squares = sum(p.detach().reshape(n, -1).pow(2).sum(1) for p in self.groups[group])
        return squares.sqrt()

    @torch.no_grad()
    def __call__(self, model: nn.Module, step: int = 0) -> None:
        for group, eta in self._group_eta.items():
            factor = (1.0 - eta / self._norms(group).clamp_min(1e-12)).clamp_min(0.0)
            n = self.units[group]
            for p in self.groups[group]:
                p.view(n, -1).mul_(factor.unsqueeze(1).to(p.dtype))
        for p, eta in zip(self.weights, self._weight_eta, strict=True):
            p.copy_(p.sign() * (p.abs() - eta).clamp_min(0.0))


def _rows(module: nn.Module | None, rows: int) -> list[nn.Parameter]:
    """``module``'s weight and bias when their first dimension is ``rows`` (one block per unit)."""
    if module is None:
        return []
    found = []
    for attr in ("weight", "bias"):
        p = getattr(module, attr, None)
        if isinstance(p, nn.Parameter) and p.dim() >= 1 and p.shape[0] == rows:
            found.append(p)
    return found
