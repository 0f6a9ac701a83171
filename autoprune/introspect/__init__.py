"""Introspection: prunable layers, parameters, MACs (dense-kernel and sparse), FLOPs, bytes and measured latency.

Example:
    >>> import torch
    >>> from autoprune.introspect import profile_model
    >>> profile_model(torch.nn.Linear(4, 2), torch.zeros(1, 4)).params
    10
"""

from autoprune.introspect._cost import (
    LayerProfile,
    ModelProfile,
    count_flops,
    count_nonzero_params,
    count_params,
    layer_macs,
    profile_model,
    state_bytes,
)
from autoprune.introspect._latency import (
    LatencyStats,
    measure_latency,
    side_by_side_latency,
    torch_threads,
)
from autoprune.introspect._layers import PRUNABLE_TYPES, get_layer, prunable_layers

__all__ = [
    "PRUNABLE_TYPES",
    "LatencyStats",
    "LayerProfile",
    "ModelProfile",
    "count_flops",
    "count_nonzero_params",
    "count_params",
    "get_layer",
    "layer_macs",
    "measure_latency",
    "profile_model",
    "prunable_layers",
    "side_by_side_latency",
    "state_bytes",
    "torch_threads",
]
