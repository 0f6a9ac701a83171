"""Exact counts: parameters, MACs and bytes, per layer and in total.

MACs are counted with forward hooks on one example input (batch size 1):
a convolution costs ``out_elements * in_channels/groups * kernel_size``, a
linear layer ``out_elements * in_features``. ``nonzero_*`` figures weight
each layer by the density of its weight (what unstructured sparsity saves in
principle); structured pruning shrinks the plain figures themselves.

Example:
    >>> import torch
    >>> from autoprune.tasks.models import FashionCNN
    >>> p = profile_model(FashionCNN(), torch.zeros(1, 1, 28, 28))
    >>> p.params, p.macs
    (421642, 4241152)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from autoprune._device import model_device
from autoprune.introspect._layers import prunable_layers


@dataclass(frozen=True)
class LayerProfile:
    """One prunable layer: shape, parameters (weight + bias), MACs, densities."""

    name: str
    type: str
    weight_shape: tuple[int, ...]
    params: int
    nonzero_params: int
    macs: int
    nonzero_macs: int

    @property
    def weight_sparsity(self) -> float:
        """Fraction of this layer's parameters that are zero."""
        return 1.0 - self.nonzero_params / self.params if self.params else 0.0


@dataclass(frozen=True)
class ModelProfile:
    """Per-layer profiles and whole-model totals (all parameters, all layers)."""

    layers: list[LayerProfile]
    params: int
    nonzero_params: int
    macs: int
    nonzero_macs: int
    bytes: int
    extra: dict = field(default_factory=dict)

    def to_frame(self):
        """A pandas DataFrame, one row per prunable layer, with shares of the totals."""
        import pandas as pd

        rows = [
            {
                "layer": layer.name,
                "type": layer.type,
                "weight_shape": "x".join(map(str, layer.weight_shape)),
                "params": layer.params,
                "nonzero_params": layer.nonzero_params,
                "macs": layer.macs,
                "param_share": layer.params / self.params if self.params else 0.0,
                "mac_share": layer.macs / self.macs if self.macs else 0.0,
            }
            for layer in self.layers
        ]
        return pd.DataFrame(rows)


def count_params(model: nn.Module) -> int:
    """All parameters of ``model``."""
    return sum(p.numel() for p in model.parameters())


def count_nonzero_params(model: nn.Module) -> int:
    """Parameters of ``model`` that are not exactly zero."""
    return sum(int(torch.count_nonzero(p)) for p in model.parameters())


def state_bytes(model: nn.Module) -> int:
    """Bytes of every tensor in the state_dict (parameters and buffers) as stored."""
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())


def _macs_of(module: nn.Module, output: torch.Tensor) -> int:
    out_per_item = output[0].numel() if output.dim() > 0 else 1
    if isinstance(module, nn.Linear):
        return out_per_item * module.in_features
    kernel = math.prod(module.kernel_size)
    return out_per_item * (module.in_channels // module.groups) * kernel


@torch.no_grad()
def layer_macs(model: nn.Module, example_input: torch.Tensor) -> dict[str, int]:
    """MACs of each prunable layer for one input item (batch size 1)."""
    layers = prunable_layers(model)
    macs: dict[str, int] = {}
    hooks = []
    for name, module in layers.items():

        def hook(mod, _inputs, output, name=name):
            if isinstance(output, torch.Tensor):
                macs[name] = macs.get(name, 0) + _macs_of(mod, output)

        hooks.append(module.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        model(example_input[:1].to(model_device(model)))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return macs


def profile_model(model: nn.Module, example_input: torch.Tensor) -> ModelProfile:
    """Parameters, MACs and bytes of ``model``, per prunable layer and in total."""
    macs = layer_macs(model, example_input)
    rows = []
    for name, module in prunable_layers(model).items():
        params = module.weight.numel() + (module.bias.numel() if module.bias is not None else 0)
        nz_weight = int(torch.count_nonzero(module.weight))
        nonzero = nz_weight + (
            int(torch.count_nonzero(module.bias)) if module.bias is not None else 0
        )
        density = nz_weight / module.weight.numel()
        layer_mac = macs.get(name, 0)
        rows.append(
            LayerProfile(
                name=name,
                type=type(module).__name__,
                weight_shape=tuple(module.weight.shape),
                params=params,
                nonzero_params=nonzero,
                macs=layer_mac,
                nonzero_macs=round(layer_mac * density),
            )
        )
    total_macs = sum(r.macs for r in rows)
    return ModelProfile(
        layers=rows,
        params=count_params(model),
        nonzero_params=count_nonzero_params(model),
        macs=total_macs,
        nonzero_macs=sum(r.nonzero_macs for r in rows),
        bytes=state_bytes(model),
    )
