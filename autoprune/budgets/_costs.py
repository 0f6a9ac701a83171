"""Exact costs of a (pruned) model: what the budgets are checked against.

* ``params``: non-zero parameters (pruned weights do not count);
* ``macs``: MACs per input of the convolution and linear layers as dense
  kernels execute them: structured pruning (channels, heads, neurons removed)
  shrinks them, zeroed weights do not;
* ``sparse_macs``: each layer's MACs times its weight density (the work a
  sparse kernel could skip; unstructured and N:M sparsity count here);
* ``flops`` (when asked for): every operation FlopCounterMode counts, attention
  matrix products included (2 per multiply-add);
* ``bytes``: the exact size of the weights file ``apply`` writes
  (:mod:`autoprune.artifact`: bitmask plus values for sparse tensors);
* ``latency_ms``: measured or estimated CPU latency, when asked for.

Example:
    >>> import torch
    >>> c = measure_costs(torch.nn.Linear(10, 10), torch.zeros(1, 10))
    >>> c.params, c.macs, c.sparse_macs
    (110, 100, 100)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace

import torch
from torch import nn

from autoprune.artifact import artifact_bytes
from autoprune.introspect import count_flops, profile_model
from autoprune.prune.units import HistoryEntry

COST_OF_KIND = {"params": "params", "macs": "macs", "size": "bytes", "latency": "latency_ms"}


@dataclass(frozen=True)
class Costs:
    """Parameters, dense-kernel MACs, bytes on disk and (optionally) latency, sparse MACs and FLOPs."""

    params: int
    macs: int
    bytes: int
    latency_ms: float | None = None
    sparse_macs: int | None = None
    flops: int | None = None

    def of(self, kind: str) -> float:
        """The value a budget of ``kind`` is checked against."""
        value = getattr(self, COST_OF_KIND[kind])
        if value is None:
            raise ValueError(f"No {kind} measured for this model.")
        return float(value)

    def with_latency(self, latency_ms: float) -> Costs:
        return replace(self, latency_ms=latency_ms)

    def as_dict(self) -> dict:
        return asdict(self)


def in_scope(name: str, scope: tuple[str, ...] | None) -> bool:
    """Whether module or parameter ``name`` lies under one of the ``scope`` prefixes (None: everything).

    Example:
        >>> in_scope("bert.encoder.layer.0.output.dense", ("bert.encoder",)), in_scope("bert.embeddings", ("bert.encoder",))
        (True, False)
    """
    return scope is None or any(name == p or name.startswith(p + ".") for p in scope)


def measure_costs(
    model: nn.Module,
    example_input: torch.Tensor,
    *,
    latency: Callable[[nn.Module], float] | None = None,
    scope: tuple[str, ...] | None = None,
    history: Sequence[HistoryEntry] | None = None,
    flops: bool = False,
) -> Costs:
    """Exact parameters, MACs (dense-kernel and sparse) and bytes of ``model``.

    Latency when ``latency`` is given; FLOPs (FlopCounterMode, one more forward
    pass) when ``flops`` is true.

    ``scope`` (module-name prefixes, e.g. ``("bert.encoder",)``) limits the
    parameters and MACs counted to those modules; bytes are always the whole file,
    with the structured-pruning ``history`` it will carry (its size depends only on
    the model: every unit is listed with a fixed-width mask).
    """
    profile = profile_model(model, example_input)
    prunable = {layer.name: layer for layer in profile.layers}
    params = 0
    for name, module in model.named_modules():
        if name in prunable:
            params += prunable[name].nonzero_params if in_scope(name, scope) else 0
            continue
        params += sum(
            p.numel()
            for pname, p in module.named_parameters(recurse=False)
            if in_scope(f"{name}.{pname}", scope)
        )
    counted = [layer for layer in profile.layers if in_scope(layer.name, scope)]
    return Costs(
        params=int(params),
        macs=int(sum(layer.macs for layer in counted)),
        bytes=artifact_bytes(model.state_dict(), history=history),
        latency_ms=None if latency is None else float(latency(model)),
        sparse_macs=int(sum(layer.sparse_macs for layer in counted)),
        flops=count_flops(model, example_input, scope=scope) if flops else None,
    )
