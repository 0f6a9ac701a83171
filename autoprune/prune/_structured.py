"""Structured pruning: remove whole output channels and neurons, physically.

Channels are removed through torch-pruning's dependency graph, so every layer
tied to a channel (BatchNorm, the next layer's inputs, residual additions, a
flatten into a linear layer) shrinks with it. The unit is the *dependency
group*: layers coupled by a residual addition lose the same channels. A group
is named after its first output layer in definition order; the model's output
layer is never a group (its outputs are the predictions).

The graph records a pruning history (layer name, in/out, indices) that replays
the same removal on a fresh model; that is how a pruned model is rebuilt
without pickle.

Example:
    >>> import torch
    >>> from autoprune.tasks.models import FashionCNN
    >>> cp = ChannelPruner(FashionCNN(), torch.zeros(1, 1, 28, 28))
    >>> sorted(cp.groups)
    ['conv1', 'conv2', 'fc1']
    >>> cp.remove("conv1", [0, 1]); cp.channels("conv1")
    30
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import nn

from autoprune._device import model_device
from autoprune.errors import PruningError
from autoprune.introspect import PRUNABLE_TYPES

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import torch_pruning as tp


@dataclass(frozen=True)
class StructuredGroup:
    """Layers that lose the same channels.

    ``out_layers`` lose ``unit_size`` outputs per unit (1 for a channel, the head
    size for an attention head); ``in_layers`` lose inputs, ``in_factors[i]`` inputs
    per unit (49 for a flatten of 7x7 maps into a linear layer); ``norm_layers``
    (BatchNorm, LayerNorm, ...) lose their per-channel parameters and statistics.
    """

    name: str
    out_layers: tuple[str, ...]
    in_layers: tuple[str, ...]
    in_factors: tuple[int, ...] = ()
    norm_layers: tuple[str, ...] = ()
    unit_size: int = 1


def _trace(model: nn.Module, example_input: torch.Tensor):
    was_training = model.training
    model.eval()  # tracing runs a forward pass: never update BatchNorm statistics
    try:
        with warnings.catch_warnings(), torch.enable_grad():
            warnings.simplefilter("ignore")
            example = example_input.to(model_device(model))
            return tp.DependencyGraph().build_dependency(
                model, example_inputs=example, verbose=False
            )
    except Exception as exc:
        raise PruningError(
            f"The model cannot be traced for structured pruning ({type(exc).__name__}: {exc}). "
            "Use unstructured or N:M granularity for this model."
        ) from exc
    finally:
        model.train(was_training)


class ChannelPruner:
    """Dependency groups of a model, their channel scores, and physical removal."""

    def __init__(self, model: nn.Module, example_input: torch.Tensor) -> None:
        self.model = model
        self.graph = _trace(model, example_input)
        order = {module: i for i, (_, module) in enumerate(model.named_modules())}
        self._name = {module: name for name, module in model.named_modules()}
        self._module = {name: module for module, name in self._name.items()}
        self.groups: dict[str, StructuredGroup] = {}
        self._layer_group: dict[str, str] = {}
        self._output_layers: set[str] = set()
        for group in self.graph.get_all_groups(root_module_types=PRUNABLE_TYPES):
            outs, ins, factors, norms = self._members(group)
            if not ins:
                self._output_layers.update(
                    outs
                )  # nothing consumes these channels: the model's output
                continue
            name = min(outs, key=lambda n: order[self._module[n]])
            self.groups[name] = StructuredGroup(
                name,
                tuple(sorted(outs, key=lambda n: order[self._module[n]])),
                tuple(ins),
                tuple(factors),
                tuple(norms),
            )
            for layer in outs:
                self._layer_group[layer] = name
        self.groups = dict(
            sorted(self.groups.items(), key=lambda item: order[self._module[item[0]]])
        )
        self.original_channels = {name: self.channels(name) for name in self.groups}
        self._kept = {name: list(range(n)) for name, n in self.original_channels.items()}

    def _members(self, group) -> tuple[list[str], list[str], list[int], list[str]]:
        outs, ins, factors, norms = [], [], [], []
        n_channels = len(group[0].idxs)
        for item in group:
            module, handler = item.dep.target.module, item.dep.handler
            if not isinstance(module, nn.Module) or module not in self._name:
                continue
            name = self._name[module]
            if not isinstance(module, PRUNABLE_TYPES):
                if self.graph.is_out_channel_pruning_fn(handler) and any(
                    p.dim() == 1 for p in module.parameters(recurse=False)
                ):
                    norms.append(name)
                continue
            if self.graph.is_out_channel_pruning_fn(handler):
                outs.append(name)
            elif self.graph.is_in_channel_pruning_fn(handler):
                ins.append(name)
                factors.append(max(1, len(item.idxs) // max(1, n_channels)))
        return outs, ins, factors, norms

    def group_of(self, layer: str) -> str:
        """The group whose output channels include ``layer``'s; errors name the reason."""
        if layer in self._layer_group:
            return self._layer_group[layer]
        if layer in self._output_layers:
            raise PruningError(
                f"Layer '{layer}' cannot be pruned structurally: its outputs are the model's outputs "
                "(no later layer consumes them). Prune it unstructured or N:M instead."
            )
        raise PruningError(
            f"Layer '{layer}' cannot be pruned structurally: the model cannot be traced through it "
            "(its forward pass leaves autograd, e.g. .numpy(), .item() or torch.no_grad()). "
            "Use unstructured or N:M granularity for this layer."
        )

    def channels(self, group: str) -> int:
        """Current number of output channels of ``group``."""
        return int(self.graph.get_out_channels(self._module[group]))

    def _full_group(self, group: str):
        module = self._module[group]
        pruner = self.graph.get_pruner_of_module(module)
        return self.graph.get_pruning_group(
            module, pruner.prune_out_channels, list(range(self.channels(group)))
        )

    def channel_scores(
        self, group: str, criterion, stats: dict[str, dict[str, torch.Tensor]]
    ) -> torch.Tensor:
        """One score per current channel: the criterion summed over every coupled weight."""
        n = self.channels(group)
        direct = [
            criterion.channel_scores_from_output(stats.get(layer, {}))
            for layer in self.groups[group].out_layers
        ]
        if direct and all(d is not None for d in direct):
            return torch.stack([d.double().cpu() for d in direct]).sum(0)
        total = torch.zeros(n, dtype=torch.float64)
        for item in self._full_group(group):
            module, handler = item.dep.target.module, item.dep.handler
            if not isinstance(module, PRUNABLE_TYPES) or None in item.root_idxs:
                continue
            scores = criterion.weight_scores(module, stats.get(self._name[module], {})).double()
            if self.graph.is_out_channel_pruning_fn(handler):
                per_unit = scores.flatten(1).sum(1)
            elif self.graph.is_in_channel_pruning_fn(handler) and getattr(module, "groups", 1) == 1:
                per_unit = scores.transpose(0, 1).flatten(1).sum(1)
            else:
                continue
            total.scatter_add_(
                0, torch.as_tensor(item.root_idxs), per_unit.cpu()[torch.as_tensor(item.idxs)]
            )
        return total

    def remove(self, group: str, indices) -> None:
        """Physically remove output channels ``indices`` of ``group`` and everything tied to them."""
        indices = sorted(int(i) for i in indices)
        if not indices:
            return
        if len(indices) >= self.channels(group):
            raise PruningError(
                f"Cannot remove all {self.channels(group)} channels of group '{group}'."
            )
        module = self._module[group]
        pruner = self.graph.get_pruner_of_module(module)
        pruning_group = self.graph.get_pruning_group(module, pruner.prune_out_channels, indices)
        pruning_group.prune()
        gone = set(indices)
        self._kept[group] = [k for i, k in enumerate(self._kept[group]) if i not in gone]

    @property
    def history(self) -> list:
        """What was removed, canonically: ``[group, True, bitmask]`` for every group (see :func:`encode_removed`).

        Groups are independent, so replaying one entry per group on a fresh model gives
        the same architecture however many steps the removal took; and as every group is
        listed with a fixed-width mask, the history's size depends on the model only.
        """
        return [
            [group, True, encode_removed(set(range(n)) - set(self._kept[group]), n)]
            for group, n in self.original_channels.items()
        ]


def encode_removed(removed, n: int) -> str:
    """Removed original indices of ``n`` units as a fixed-width hex bitmask (bit i: unit i removed).

    Example:
        >>> encode_removed({0, 3}, 12), decode_removed("009")
        ('009', [0, 3])
    """
    value = sum(1 << int(i) for i in removed)
    return format(value, "x").zfill((n + 3) // 4)


def decode_removed(mask) -> list[int]:
    """Indices of a bitmask from :func:`encode_removed` (a list of indices passes through)."""
    if isinstance(mask, list):
        return [int(i) for i in mask]
    value = int(mask, 16)
    return [i for i in range(value.bit_length()) if value >> i & 1]


def structured_units(model: nn.Module, example_input: torch.Tensor):
    """The structured units of a model: heads and neurons of transformer blocks, else dependency groups."""
    from autoprune.prune._transformer import TransformerUnits, has_transformer_blocks

    if has_transformer_blocks(model):
        return TransformerUnits(model, example_input)
    return ChannelPruner(model, example_input)


def replay_history(model: nn.Module, example_input: torch.Tensor, history: list) -> nn.Module:
    """Apply a recorded pruning history to a fresh model of the same architecture, in place."""
    if history and isinstance(
        history[0][1], str
    ):  # transformer units: [unit, "heads" | "neurons", indices]
        from autoprune.prune._transformer import TransformerUnits

        TransformerUnits(model).replay(history)
        return model
    graph = _trace(model, example_input)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            history = [
                [name, out, decode_removed(idxs)]
                for name, out, idxs in history
                if decode_removed(idxs)
            ]
            graph.load_pruning_history(
                [(name, bool(out), list(idxs)) for name, out, idxs in history]
            )
    except (AttributeError, IndexError, RuntimeError, ValueError) as exc:
        raise PruningError(
            f"The structured pruning history does not fit this model: {type(exc).__name__}: {exc}"
        ) from exc
    return model
