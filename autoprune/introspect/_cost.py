"""Exact counts: parameters, MACs and bytes, per layer and in total.

MACs are counted with forward hooks on one example input (batch size 1):
a convolution costs ``out_elements * in_channels/groups * kernel_size``, a
linear layer ``out_elements * in_features``.

* ``macs``: what dense kernels execute. Structured pruning (a channel, head or
  neuron physically removed) shrinks it; a weight set to zero does not.
* ``sparse_macs``: each layer's MACs times the density of its weight, what a
  sparse kernel could skip in principle (``nonzero_macs`` is the same figure
  under its former name).
* ``flops`` (when asked for): every floating-point operation torch's
  :class:`~torch.utils.flop_counter.FlopCounterMode` counts for one input
  (matrix products, convolutions and attention, 2 per multiply-add), not only
  the prunable layers'. Elementwise operations are not counted.

Example:
    >>> import torch
    >>> from autoprune.tasks.models import FashionCNN
    >>> p = profile_model(FashionCNN(), torch.zeros(1, 1, 28, 28))
    >>> p.params, p.macs
    (421642, 4241152)
    >>> profile_model(FashionCNN(), torch.zeros(1, 1, 28, 28), flops=True).flops
    8482304
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
    sparse_macs: int

    @property
    def nonzero_macs(self) -> int:
        """The former name of :attr:`sparse_macs`."""
        return self.sparse_macs

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
    sparse_macs: int
    bytes: int
    extra: dict = field(default_factory=dict)
    flops: int | None = None

    @property
    def nonzero_macs(self) -> int:
        """The former name of :attr:`sparse_macs`."""
        return self.sparse_macs

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
                "sparse_macs": layer.sparse_macs,
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


@torch.no_grad()
def count_flops(
    model: nn.Module, example_input: torch.Tensor, *, scope: tuple[str, ...] | None = None
) -> int:
    """FLOPs of one forward pass on one input item, as FlopCounterMode counts them.

    ``scope`` (module-name prefixes, e.g. ``("bert.encoder",)``) counts only the
    operations run inside those modules.

    Example:
        >>> count_flops(torch.nn.Linear(4, 3), torch.zeros(1, 4))
        24
    """
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    was_training = model.training
    model.eval()
    try:
        with counter:
            model(example_input[:1].to(model_device(model)))
    finally:
        model.train(was_training)
    if scope is None:
        return int(counter.get_total_flops())
    root = type(model).__name__
    counts = counter.get_flop_counts()
    return int(sum(sum(counts.get(f"{root}.{prefix}", {}).values()) for prefix in scope))


def profile_model(
    model: nn.Module, example_input: torch.Tensor, *, flops: bool = False
) -> ModelProfile:
    """Parameters, MACs and bytes of ``model``, per prunable layer and in total (FLOPs when ``flops``)."""
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
                sparse_macs=round(layer_mac * density),
            )
        )
    total_macs = sum(r.macs for r in rows)
    return ModelProfile(
        layers=rows,
        params=count_params(model),
        nonzero_params=count_nonzero_params(model),
        macs=total_macs,
        sparse_macs=sum(r.sparse_macs for r in rows),
        bytes=state_bytes(model),
        flops=count_flops(model, example_input) if flops else None,
    )
