"""Channels of a model that cannot be traced whole: the channels inside each block.

Some models cannot be traced for channels as a whole (ShuffleNet's channel
shuffle defeats torch-pruning's index mapping). :class:`BlockChannelUnits`
records the inputs of every module in one forward pass, then traces the
model's children one by one, descending into a child that cannot be traced
either; each traced block contributes the channel groups that stay inside it
(the channels of its outputs are tied to the rest of the model and stay; a group
whose removal breaks a copy of its block, as a depthwise convolution of the
block's input does, is left out too). A block that cannot be traced down to its
leaves is left out, with a note.

Example:
    >>> import torch
    >>> from torch import nn
    >>> class Shuffle(nn.Module):
    ...     def forward(self, x):
    ...         return x.view(1, 2, -1, 4, 4).transpose(1, 2).reshape(1, -1, 4, 4) / 0 ** 0
    >>> block = nn.Sequential(nn.Conv2d(4, 8, 1), nn.ReLU(), nn.Conv2d(8, 4, 1))
    >>> model = nn.Sequential(nn.Conv2d(3, 4, 1), block, Shuffle())
    >>> units = BlockChannelUnits(model, torch.zeros(1, 3, 4, 4))
    >>> list(units.groups), units.channels("1.0")
    (['1.0'], 8)
    >>> units.remove("1.0", [0, 1]); model[1][2].in_channels
    6
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

import torch
from torch import nn

from autoprune.errors import PruningError
from autoprune.prune._criteria import Criterion
from autoprune.prune.units._channels import Call, ChannelUnits
from autoprune.prune.units._history import HistoryEntry
from autoprune.prune.units._probe import forward_once
from autoprune.prune.units._protocol import Stats, StructuredGroup


def record_calls(model: nn.Module, example_input: torch.Tensor) -> dict[str, Call]:
    """The arguments of the first call of every module of ``model`` on ``example_input``."""
    calls: dict[str, Call] = {}
    hooks = []
    for name, module in model.named_modules():

        def hook(module, args, kwargs, name=name):
            calls.setdefault(name, (args, kwargs))

        hooks.append(module.register_forward_pre_hook(hook, with_kwargs=True))
    forward_once(model, example_input, hooks)
    return calls


def _prefixed(group: StructuredGroup, prefix: str) -> StructuredGroup:
    def full(names: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(prefix + n for n in names)

    return StructuredGroup(
        prefix + group.name,
        full(group.out_layers),
        full(group.in_layers),
        group.in_factors,
        full(group.norm_layers),
        group.unit_size,
        group.out_factors,
    )


class BlockChannelUnits:
    """Channel groups inside the blocks of a model traced block by block (see the module doc)."""

    def __init__(self, model: nn.Module, example_input: torch.Tensor) -> None:
        self.model = model
        self.notes: list[str] = []
        self.groups: dict[str, StructuredGroup] = {}
        self._owner: dict[
            str, tuple[str, ChannelUnits]
        ] = {}  # group -> (prefix, its block's units)
        self._layers: dict[str, str] = {}
        calls = record_calls(model, example_input)
        self._descend(model, "", calls)
        self.original_channels = {g: self.channels(g) for g in self.groups}

    def _descend(self, module: nn.Module, name: str, calls: dict[str, Call]) -> None:
        for child_name, child in module.named_children():
            full = f"{name}.{child_name}" if name else child_name
            if full not in calls or not any(True for _ in child.parameters()):
                continue
            try:
                units = ChannelUnits(child, _detached(calls[full]))
            except PruningError as exc:
                if any(True for _ in child.children()):
                    self._descend(child, full, calls)
                else:
                    self.notes.append(f"The channels of '{full}' are left out: {exc}")
                continue
            prefix = f"{full}."
            self.notes.extend(units.notes)
            bad = _breaking_groups(child, _detached(calls[full]), list(units.groups))
            if bad:
                self.notes.append(
                    f"{len(bad)} channel group(s) of '{full}' (e.g. '{prefix}{bad[0]}') are left "
                    "out: their channels are tied to the block's inputs."
                )
            for group in units.groups.values():
                if group.name in bad:
                    continue
                self.groups[prefix + group.name] = _prefixed(group, prefix)
                self._owner[prefix + group.name] = (prefix, units)
                for layer in group.out_layers:
                    self._layers[prefix + layer] = prefix + group.name

    def _units(self, group: str) -> tuple[str, ChannelUnits]:
        if group not in self._owner:
            raise PruningError(f"The model has no channel group '{group}'.")
        return self._owner[group]

    def group_of(self, layer: str) -> str:
        """The group whose output channels include ``layer``'s; the error says why there is none."""
        if layer in self._layers:
            return self._layers[layer]
        raise PruningError(
            f"Layer '{layer}' cannot be pruned structurally: the model is traced block by block, and "
            "its channels leave its block (or its block cannot be traced). Prune it unstructured or N:M."
        )

    def channels(self, group: str) -> int:
        prefix, units = self._units(group)
        return units.channels(group[len(prefix) :])

    def channel_scores(self, group: str, criterion: Criterion, stats: Stats) -> torch.Tensor:
        prefix, units = self._units(group)
        local = {k[len(prefix) :]: v for k, v in stats.items() if k.startswith(prefix)}
        return units.channel_scores(group[len(prefix) :], criterion, local)

    def remove(self, group: str, indices: Iterable[int]) -> None:
        prefix, units = self._units(group)
        units.remove(group[len(prefix) :], indices)

    def replay(self, history: Iterable[HistoryEntry]) -> None:
        """Remove the channels ``history`` records (indices as first built, one entry per group)."""
        for entry in history:
            if entry.kind != "channels":
                raise PruningError(f"A block-traced model replays channels only, not {entry.kind}.")
            if entry.removed:
                self.remove(entry.unit, entry.removed)

    @property
    def history(self) -> list[HistoryEntry]:
        """One ``channels`` entry with a bitmask of removed originals for every group."""
        entries = []
        for group, (prefix, units) in self._owner.items():
            for entry in units.history:
                if prefix + entry.unit == group:
                    entries.append(HistoryEntry(group, entry.kind, entry.removed, entry.digits))
        return entries


def _shapes(value):
    if isinstance(value, torch.Tensor):
        return tuple(value.shape)
    if isinstance(value, (tuple, list)):
        return tuple(_shapes(v) for v in value)
    return None


def _runs_without(block: nn.Module, call: Call, groups: list[str], expected) -> bool:
    """Whether a copy of ``block`` without one channel of each of ``groups`` runs as before."""
    trial = copy.deepcopy(block)
    try:
        units = ChannelUnits(trial, call)
        for group in groups:
            if units.channels(group) > 1:
                units.remove(group, [0])
        with torch.no_grad():
            return _shapes(trial(*call[0], **call[1])) == expected
    except Exception:  # the block's own code failing is the answer
        return False


def _breaking_groups(block: nn.Module, call: Call, groups: list[str]) -> list[str]:
    """The groups whose removal breaks ``block`` on its recorded call (tied to its inputs)."""
    if not groups:
        return []
    with torch.no_grad():
        expected = _shapes(block(*call[0], **call[1]))
    if _runs_without(block, call, groups, expected):
        return []
    return [g for g in groups if not _runs_without(block, call, [g], expected)]


def _detached(call: Call) -> Call:
    args, kwargs = call
    return tuple(a.detach() if isinstance(a, torch.Tensor) else a for a in args), dict(kwargs)
