"""Costs of a policy without pruning anything: parameters, MACs and bytes, analytically.

The search repairs candidates to fit a budget and the seed policies are found
by bisection; both evaluate many allocations, so they need costs in
microseconds, not a pruned copy of the model each time. The model traces the
dependency groups once and then counts: a layer keeps ``out_kept x in_kept x
kernel`` weights (structured), of which ``1 - sparsity`` are non-zero
(unstructured) or ``N/M`` (N:M). ``macs`` shrink with the kept channels only
(dense kernels), ``sparse_macs`` with the weight density too. The figures equal
what the Pruner produces (tests check this); bytes are an upper estimate of the
weights file (the trial measures the exact size).

Example:
    >>> import torch
    >>> from autoprune.tasks.models import FashionCNN
    >>> from autoprune.policy import Policy
    >>> cm = CostModel(FashionCNN(), torch.zeros(1, 1, 28, 28))
    >>> cm.estimate(Policy.uniform(["fc1"], 0.5)).params
    220938
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from autoprune.artifact import encode_state_dict, serialize_state_dict, sparse_bytes
from autoprune.budgets._costs import Costs, in_scope
from autoprune.introspect import profile_model, prunable_layers
from autoprune.policy import Policy, parse_nm
from autoprune.prune import channels_to_remove, local_count, structured_units
from autoprune.prune.units import HistoryEntry, StructuredGroup

HEADER_PER_SPARSE_TENSOR = 160  # two more header entries (mask, values) and the shape in metadata
HEADER_MARGIN = 256
ALIGNMENT = 8  # safetensors pads its header to a multiple of 8 bytes


@dataclass(frozen=True)
class _Layer:
    out_dim: int
    in_dim: int
    kernel: int
    bias: bool
    macs: int


def _layers(model: nn.Module, macs: dict[str, int]) -> dict[str, _Layer]:
    """The shape, bias and dense MACs of every prunable layer."""
    layers = {}
    for name, module in prunable_layers(model).items():
        w = module.weight
        out_dim, in_dim = w.shape[0], w.shape[1]
        kernel = w.numel() // (out_dim * in_dim)
        layers[name] = _Layer(out_dim, in_dim, kernel, module.bias is not None, macs[name])
    return layers


class CostModel:
    """Analytic costs of policies applied to one dense model."""

    def __init__(
        self, model: nn.Module, example_input: torch.Tensor, *, scope: tuple[str, ...] | None = None
    ) -> None:
        profile = profile_model(model, example_input)
        self.scope = scope
        self._model, self._example = model, example_input
        self._shallower: dict[tuple[str, ...], CostModel] = {}
        self.layers = _layers(model, {layer.name: layer.macs for layer in profile.layers})
        self.total_params = sum(
            p.numel() for n, p in model.named_parameters() if in_scope(n, scope)
        )
        self.prunable_params = sum(
            layer.params for layer in profile.layers if in_scope(layer.name, scope)
        )
        try:
            units = structured_units(copy.deepcopy(model), example_input)
        except Exception:  # an untraceable model simply has no structured option
            units = None
        self.groups: dict[str, StructuredGroup] = units.groups if units else {}
        # the history a structured model's file carries: every unit with a fixed-width mask, each
        # entry of its own kind (channels, heads, neurons), so its size depends on the model only
        self.full_history: list[HistoryEntry] = units.history if units else []
        self.layer_group = {
            layer: g for g, group in self.groups.items() for layer in group.out_layers
        }
        self.norm_params = self._norm_params(model)
        self._measure_tensors(model)
        self._measure_file(model)

    def _norm_params(self, model: nn.Module) -> dict[str, int]:
        """Parameters of each group's norm layers (in scope): they shrink with the group."""
        modules = dict(model.named_modules())
        return {
            g: sum(
                p.numel()
                for n in group.norm_layers
                if in_scope(n, self.scope)
                for p in modules[n].parameters(recurse=False)
            )
            for g, group in self.groups.items()
        }

    def _measure_tensors(self, model: nn.Module) -> None:
        """Bytes of each group's per-channel norm tensors, and of every other non-layer tensor."""
        norm_owner = {n: g for g, group in self.groups.items() for n in group.norm_layers}
        self.norm_bytes = {
            g: 0 for g in self.groups
        }  # per-channel tensors of a group's norm layers
        self.static_bytes = 0  # every other tensor that is not a prunable layer's weight or bias
        for name, tensor in model.state_dict().items():
            owner = name.rpartition(".")[0]
            size = tensor.numel() * tensor.element_size()
            if owner in self.layers:
                continue
            if owner in norm_owner and tensor.dim() == 1:
                self.norm_bytes[norm_owner[owner]] += size
            else:
                self.static_bytes += size

    def _measure_file(self, model: nn.Module) -> None:
        """The dense weights file: its size, its header, and what a structured history adds."""
        state = model.state_dict()
        tensors, _ = encode_state_dict(state)
        encoded_payload = sum(t.numel() * t.element_size() for t in tensors.values())
        self.dense_bytes = len(serialize_state_dict(state, history=[]))
        self.header_bytes = self.dense_bytes - encoded_payload
        self.structured_history_bytes = (
            len(serialize_state_dict(state, history=self.full_history))
            - self.dense_bytes
            + ALIGNMENT
        )
        # upper estimate: every tensor the dense file encodes sparsely is counted as a sparse header entry
        self.header_bytes += HEADER_PER_SPARSE_TENSOR * sum(
            name.endswith(".__values__") for name in tensors
        )

    def shrinkable(self) -> dict[str, tuple[bool, bool]]:
        """Which dimensions of each layer structured pruning can shrink: (inputs, outputs)."""
        inputs = {name for group in self.groups.values() for name in group.in_layers}
        return {name: (name in inputs, name in self.layer_group) for name in self.layers}

    def group_of(self, layer: str) -> str | None:
        return self.layer_group.get(layer)

    def units(self, group: str) -> int:
        """Channels (or heads) of a structured unit in the dense model."""
        info = self.groups[group]
        return self.layers[info.out_layers[0]].out_dim // info.unit_size

    def kept_channels(self, policy: Policy) -> dict[str, int]:
        """Channels (or heads, neurons) kept per structured unit under ``policy`` (local scope)."""
        kept = {}
        for name, lp in policy.layers.items():
            if lp.granularity == "structured":
                group = self.layer_group[name]
                n = self.units(group)
                kept[group] = n - channels_to_remove(
                    n, lp.channel_ratio, min_kept=policy.min_kept, round_to=policy.round_to
                )
        return kept

    def _out_kept(self, name: str, layer: _Layer, kept: dict[str, int]) -> int:
        group = self.layer_group.get(name)
        if group in kept:
            return kept[group] * self.groups[group].unit_size
        return layer.out_dim

    def _reduced(self, policy: Policy) -> tuple[CostModel, Policy]:
        """The cost model of the dense model without ``policy.blocks``, or else without the input
        features it drops (built once per block set or kept count), and the policy of the rest;
        ``self`` and ``policy`` when it removes neither."""
        from dataclasses import replace

        if policy.blocks:
            key: tuple = ("blocks", *sorted(policy.blocks))
            layers = {n: lp for n, lp in policy.layers.items() if not policy.inside_blocks(n)}
            rest = replace(policy, layers=layers, blocks=())
        elif policy.inputs is not None:
            key, rest = ("inputs", len(policy.inputs)), replace(policy, inputs=None)
        else:
            return self, policy
        if key not in self._shallower:
            self._shallower[key] = CostModel(self._reduce(policy), self._example, scope=self.scope)
        return self._shallower[key], rest

    def _reduce(self, policy: Policy) -> nn.Module:
        from autoprune.prune.depth import remove_policy_blocks
        from autoprune.prune.inputs import select_policy_inputs

        model = copy.deepcopy(self._model)
        if policy.blocks:
            return remove_policy_blocks(model, policy, self._example, check=False)[0]
        return select_policy_inputs(model, policy)

    def estimate(self, policy: Policy) -> Costs:
        """Parameters, MACs and (upper-estimate) bytes of ``policy`` on the dense model (local scope).

        Blocks the policy removes whole, and input features it drops, are costed on
        the model without them.
        """
        if policy.scope != "local":
            raise ValueError(
                "CostModel.estimate needs a local-scope policy; convert a global ranking first."
            )
        if policy.blocks or policy.inputs is not None:
            model, rest = self._reduced(policy)
            return model.estimate(rest)
        kept = self.kept_channels(policy)
        params = self.total_params - self.prunable_params
        macs = sparse_macs = 0
        payload = self.static_bytes + sum(self.norm_bytes.values())
        sparse_tensors = 0
        for name, layer in self.layers.items():
            out_kept = self._out_kept(name, layer, kept)
            in_kept = layer.in_dim - self._inputs_removed(name, kept)
            numel = out_kept * in_kept * layer.kernel
            lp = policy.layers.get(name)
            nonzero = numel
            if lp is not None and lp.granularity == "unstructured":
                nonzero = numel - local_count(numel, lp.sparsity, min_kept=policy.min_kept)
            elif lp is not None and lp.granularity == "nm":
                n, m = parse_nm(lp.nm, layer=name)
                nonzero = numel * n // m
            bias = out_kept if layer.bias else 0
            density = nonzero / numel if numel else 0.0
            if in_scope(name, self.scope):
                params += nonzero + bias
                kernel_macs = layer.macs * (out_kept / layer.out_dim) * (in_kept / layer.in_dim)
                macs += round(kernel_macs)
                sparse_macs += round(kernel_macs * density)
            weight_bytes = min(4 * numel, sparse_bytes(numel, nonzero))
            sparse_tensors += weight_bytes < 4 * numel
            payload += weight_bytes + 4 * bias
        for group, n_kept in kept.items():
            fraction = n_kept / self.units(group)
            params -= round(self.norm_params[group] * (1 - fraction))
            payload -= round(self.norm_bytes[group] * (1 - fraction))
        header = self.header_bytes + sparse_tensors * HEADER_PER_SPARSE_TENSOR + HEADER_MARGIN
        history = self.structured_history_bytes if kept else 0
        return Costs(
            params=int(params),
            macs=int(macs),
            bytes=int(payload + header + history),
            sparse_macs=int(sparse_macs),
        )

    def layer_widths(self, policy: Policy) -> dict[str, tuple[int, int]]:
        """(Kept inputs per group, kept outputs) of every layer under the structured part of ``policy``.

        A layer inside a block the policy removes keeps nothing: ``(0, 0)``.
        """
        if policy.blocks or policy.inputs is not None:
            model, rest = self._reduced(policy)
            widths = model.layer_widths(rest)
            return {name: widths.get(name, (0, 0)) for name in self.layers}
        kept = self.kept_channels(policy)
        return {
            name: (
                layer.in_dim - self._inputs_removed(name, kept),
                self._out_kept(name, layer, kept),
            )
            for name, layer in self.layers.items()
        }

    def structural_macs(self, policy: Policy) -> dict[str, int]:
        """Dense MACs of each layer after the structured part of ``policy`` (latency features)."""
        out = {}
        for name, (in_kept, out_kept) in self.layer_widths(policy).items():
            layer = self.layers[name]
            out[name] = round(layer.macs * (out_kept / layer.out_dim) * (in_kept / layer.in_dim))
        return out

    def _inputs_removed(self, layer: str, kept: dict[str, int]) -> int:
        removed = 0
        for group, n_kept in kept.items():
            info = self.groups[group]
            if layer in info.in_layers:
                factor = info.in_factors[info.in_layers.index(layer)]
                removed += (self.units(group) - n_kept) * factor
        return removed
