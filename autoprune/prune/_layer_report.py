"""The per-layer table of what pruning achieved: sparsity, channels and parameters before and after.

Example:
    >>> import torch
    >>> from autoprune.policy import Policy
    >>> layer = torch.nn.Linear(4, 2)
    >>> before = LayerSize.of(layer)
    >>> with torch.no_grad(): _ = layer.weight[0].zero_()
    >>> row = layer_row("fc", layer, before, Policy.uniform(["fc"], 0.5))
    >>> row["sparsity"], row["requested"], row["params_after"], row["nonzero_params"]
    (0.5, 0.5, 10, 6)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from autoprune.policy import Policy


def params_of(layer: nn.Module) -> int:
    """Elements of the layer's weight and bias."""
    return layer.weight.numel() + (layer.bias.numel() if layer.bias is not None else 0)


@dataclass(frozen=True)
class LayerSize:
    """A layer's weight elements, output channels and parameters (before pruning)."""

    numel: int
    channels: int
    params: int

    @classmethod
    def of(cls, layer: nn.Module) -> LayerSize:
        return cls(layer.weight.numel(), layer.weight.shape[0], params_of(layer))


def layer_row(name: str, layer: nn.Module, before: LayerSize, policy: Policy) -> dict:
    """One row of :meth:`Pruner.report <autoprune.prune.Pruner.report>` for ``layer``."""
    lp = policy.layers.get(name)
    nonzero = int(torch.count_nonzero(layer.weight.detach()))
    bias_nonzero = int(torch.count_nonzero(layer.bias.detach())) if layer.bias is not None else 0
    requested = None
    if lp and policy.scope == "local":
        requested = lp.nm if lp.granularity == "nm" else lp.amount
    return {
        "layer": name,
        "granularity": lp.granularity if lp else "none",
        "criterion": lp.criterion if lp else "",
        "requested": requested,
        "sparsity": 1.0 - nonzero / before.numel,
        "channels_before": before.channels,
        "channels_after": int(layer.weight.shape[0]),
        "channel_ratio": 1.0 - layer.weight.shape[0] / before.channels,
        "params_before": before.params,
        "params_after": params_of(layer),
        "nonzero_params": nonzero + bias_nonzero,
    }
