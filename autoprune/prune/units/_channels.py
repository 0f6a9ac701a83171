"""Channels as structured units: torch-pruning's dependency groups, removed physically.

Channels are removed through torch-pruning's dependency graph, so every layer
tied to a channel (BatchNorm, the next layer's inputs, residual additions, a
flatten into a linear layer) shrinks with it. The group is the *dependency
group*: layers coupled by a residual addition lose the same channels. A group
is named after its first output layer in definition order; the model's output
layer is never a group (its outputs are the predictions).

Example:
    >>> import torch
    >>> from autoprune.tasks.models import FashionCNN
    >>> units = ChannelUnits(FashionCNN(), torch.zeros(1, 1, 28, 28))
    >>> sorted(units.groups)
    ['conv1', 'conv2', 'fc1']
    >>> units.remove("conv1", [0, 1]); units.channels("conv1")
    30
    >>> units.history[0].to_json()
    ['conv1', True, '00000003']
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import torch
from torch import nn

from autoprune._device import model_device
from autoprune._echo import shorten
from autoprune.errors import PruningError
from autoprune.introspect import PRUNABLE_TYPES
from autoprune.prune._criteria import Criterion
from autoprune.prune.units._grouped import grouped_blocks, same_in_every_block, whole_offsets
from autoprune.prune.units._history import HistoryEntry
from autoprune.prune.units._protocol import Stats, StructuredGroup
from autoprune.prune.units._time_limit import fired, time_limit

#: the history kinds channels are recorded as (output channels; input channels in older files)
CHANNEL_KINDS = ("channels", "in_channels")
#: the longest the channels of one layer may take to group (seconds)
GROUP_SECONDS = 10.0


#: a recorded call of a module: positional and keyword arguments
Call = tuple[tuple, dict]


def trace(model: nn.Module, example_input: torch.Tensor | Call):
    """torch-pruning's dependency graph of ``model`` (a forward pass in eval mode).

    ``example_input`` is a tensor, or the arguments of a recorded call ``(args, kwargs)``.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import torch_pruning as tp  # only structured pruning needs it

    was_training = model.training
    model.eval()  # tracing runs a forward pass: never update BatchNorm statistics
    try:
        with warnings.catch_warnings(), torch.enable_grad():
            warnings.simplefilter("ignore")
            if isinstance(example_input, torch.Tensor):
                return tp.DependencyGraph().build_dependency(
                    model, example_inputs=example_input.to(model_device(model)), verbose=False
                )
            return tp.DependencyGraph().build_dependency(
                model, example_inputs=example_input, forward_fn=_call, verbose=False
            )
    except TimeoutError:
        raise
    except Exception as exc:
        reason = (
            f"{failing_module(exc, model)} "
            f"({type(exc).__name__}: {shorten(' '.join(str(exc).split()), 120, text=True)})"
        )
        error = PruningError(
            f"The model cannot be traced for structured pruning{reason}. "
            "Use unstructured or N:M granularity for this model, or declare its attention layout."
        )
        error.reason = reason
        raise error from exc
    finally:
        model.train(was_training)


def _call(model: nn.Module, call: Call):
    args, kwargs = call
    return model(*args, **kwargs)


def failing_module(exc: BaseException, model: nn.Module) -> str:
    """ " at module 'name' (Type)" for the innermost module of ``model`` running when ``exc`` was raised."""
    names = {id(m): n for n, m in model.named_modules()}
    found = ""
    tb = exc.__traceback__
    while tb is not None:
        owner = tb.tb_frame.f_locals.get("self")
        if isinstance(owner, nn.Module) and names.get(id(owner)):
            found = f" at module '{names[id(owner)]}' ({type(owner).__name__})"
        tb = tb.tb_next
    return found


class ChannelUnits:
    """Dependency groups of a model, their channel scores, and physical removal."""

    def __init__(self, model: nn.Module, example_input: torch.Tensor | Call) -> None:
        self.model = model
        self.graph = trace(model, example_input)
        self._name = {module: name for name, module in model.named_modules()}
        self._module = {name: module for module, name in self._name.items()}
        self._order = {name: i for i, name in enumerate(self._module)}
        self.groups: dict[str, StructuredGroup] = {}
        self.notes: list[str] = []
        self._layer_group: dict[str, str] = {}
        self._output_layers: set[str] = set()
        #: groups feeding or made by a grouped convolution: channels go in whole offsets, the
        #: same in each of its ``groups`` blocks (each block must keep as many as the others)
        self.channel_blocks: dict[str, int] = {}
        for group in self._all_groups():
            self._add(group)
        self.groups = dict(sorted(self.groups.items(), key=lambda item: self._order[item[0]]))
        self.original_channels = {name: self.channels(name) for name in self.groups}
        self._kept = {name: list(range(n)) for name, n in self.original_channels.items()}

    def _all_groups(self):
        """torch-pruning's group of every layer's output channels, each found under a time limit.

        A layer whose dependency search does not settle within :data:`GROUP_SECONDS`
        (torch-pruning's index propagation can cycle, e.g. through the split and
        concatenation of a rotary position embedding) is left out with a note.
        """
        graph, visited = self.graph, set()
        for module in list(graph.module2node):
            if not isinstance(module, PRUNABLE_TYPES) or module in visited:
                continue
            if module in graph.IGNORED_LAYERS_IN_TRACING:
                continue
            pruner = graph.get_pruner_of_module(module)
            if pruner is None or pruner.get_out_channels(module) is None:
                continue
            name = self._name.get(module, type(module).__name__)
            channels = list(range(pruner.get_out_channels(module)))
            try:
                with time_limit(GROUP_SECONDS, f"grouping the channels of '{name}'") as limit:
                    group = graph.get_pruning_group(module, pruner.prune_out_channels, channels)
            except TimeoutError as exc:
                if not fired(exc, limit):
                    raise
                visited.add(module)
                self.notes.append(
                    f"The channels of layer '{name}' are left out: {exc} (the dependency search "
                    "does not settle, as through a rotary position embedding)."
                )
                continue
            for item in group:
                if graph.is_out_channel_pruning_fn(item.dep.handler):
                    visited.add(item.dep.target.module)
            yield group

    def _add(self, group) -> None:
        """Record one torch-pruning group (unless nothing consumes its channels: the model's output)."""
        outs, ins, factors, norms = self._members(group)
        if not ins:
            self._output_layers.update(outs)
            return
        outs = sorted(outs, key=self._order.__getitem__)
        self.groups[outs[0]] = StructuredGroup(
            outs[0], tuple(outs), tuple(ins), tuple(factors), tuple(norms)
        )
        self._layer_group.update({layer: outs[0] for layer in outs})
        blocks = max((grouped_blocks(self._module[layer]) for layer in outs + ins), default=1)
        if blocks > 1:
            self.channel_blocks[outs[0]] = blocks

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

    def channel_scores(self, group: str, criterion: Criterion, stats: Stats) -> torch.Tensor:
        """One score per current channel: the criterion summed over every coupled weight."""
        direct = [
            criterion.channel_scores_from_output(stats.get(layer, {}))
            for layer in self.groups[group].out_layers
        ]
        if direct and all(d is not None for d in direct):
            total = torch.stack([d.double().cpu() for d in direct]).sum(0)
        else:
            total = torch.zeros(self.channels(group), dtype=torch.float64)
            for item in self._full_group(group):
                per_unit = self._coupled_scores(item, criterion, stats)
                if per_unit is not None:
                    total.scatter_add_(
                        0, torch.as_tensor(item.root_idxs), per_unit[torch.as_tensor(item.idxs)]
                    )
        return same_in_every_block(total, self.channel_blocks.get(group, 1))

    def _coupled_scores(self, item, criterion: Criterion, stats: Stats) -> torch.Tensor | None:
        """Scores per channel of one coupled layer (summed over its other dimensions), or None."""
        module, handler = item.dep.target.module, item.dep.handler
        if not isinstance(module, PRUNABLE_TYPES) or None in item.root_idxs:
            return None
        scores = criterion.weight_scores(module, stats.get(self._name[module], {})).double()
        if self.graph.is_out_channel_pruning_fn(handler) and not criterion.units_from_inputs:
            return scores.flatten(1).sum(1).cpu()
        if self.graph.is_in_channel_pruning_fn(handler) and getattr(module, "groups", 1) == 1:
            return scores.transpose(0, 1).flatten(1).sum(1).cpu()
        return None

    def remove(self, group: str, indices: Iterable[int]) -> None:
        """Physically remove output channels ``indices`` of ``group`` and everything tied to them.

        In a group of :attr:`channel_blocks`, whole offsets go (the same channel of every
        block), the ones most of ``indices`` name, as many as ``indices`` fill whole.
        """
        indices = [int(i) for i in indices]
        if group in self.channel_blocks:
            indices = whole_offsets(indices, self.channel_blocks[group], self.channels(group))
        indices = sorted(indices)
        if not indices:
            return
        if len(indices) >= self.channels(group):
            raise PruningError(
                f"Cannot remove all {self.channels(group)} channels of group '{group}'."
            )
        module = self._module[group]
        pruner = self.graph.get_pruner_of_module(module)
        self.graph.get_pruning_group(module, pruner.prune_out_channels, indices).prune()
        gone = set(indices)
        self._kept[group] = [k for i, k in enumerate(self._kept[group]) if i not in gone]

    @property
    def history(self) -> list[HistoryEntry]:
        """What was removed, canonically: one ``channels`` entry with a bitmask for every group.

        Groups are independent, so replaying one entry per group on a fresh model gives
        the same architecture however many steps the removal took; and as every group is
        listed with a fixed-width mask, the history's size depends on the model only.
        """
        return [
            HistoryEntry.of(group, "channels", set(range(n)) - set(self._kept[group]), units=n)
            for group, n in self.original_channels.items()
        ]


def replay_channels(
    model: nn.Module, example_input: torch.Tensor | Call, history: Iterable[HistoryEntry]
) -> None:
    """Remove, in order, the channels ``history`` records from a fresh ``model``, in place."""
    steps = [
        (entry.unit, entry.kind == "channels", list(entry.removed))
        for entry in history
        if entry.removed
    ]
    graph = trace(model, example_input)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            graph.load_pruning_history(steps)
    except (AttributeError, IndexError, RuntimeError, ValueError) as exc:
        raise PruningError(
            f"The structured pruning history does not fit this model: {type(exc).__name__}: {exc}"
        ) from exc
