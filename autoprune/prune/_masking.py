"""Channels zeroed instead of removed: the fast way to score many structured candidates.

Tracing a model's dependency graph costs far more than a forward pass, and
physical removal changes the model for good. :class:`MaskedChannels` traces a
model once and then, for each candidate, zeroes what removing its channels
would remove: the output rows of every coupled layer, the matching input
columns of every layer that reads them (so any activation function gives the
same outputs as removal), and the scale and shift of the normalisation layers
between. Restoring the dense weights (:meth:`restore`) readies it for the next
candidate: no new trace. A zeroed model computes what the removed model computes;
its shapes (and so its measured MACs and latency) are the dense model's, so
costs come from the analytic cost model. The final model is always removed
physically (:class:`~autoprune.prune.units.ChannelUnits`).

Example:
    >>> import torch
    >>> from autoprune.tasks.models import FashionCNN
    >>> model = FashionCNN().eval()
    >>> masked = MaskedChannels(model, torch.zeros(1, 1, 28, 28))
    >>> masked.remove("conv1", [0, 1]); masked.channels("conv1")
    30
    >>> bool(model.conv1.weight[:2].abs().sum() == 0), tuple(model.conv1.weight.shape)
    (True, (32, 1, 3, 3))
    >>> masked.restore(); masked.channels("conv1"), bool(model.conv1.weight[:2].abs().sum() > 0)
    (32, True)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from autoprune.errors import PruningError
from autoprune.introspect import PRUNABLE_TYPES
from autoprune.prune._criteria import Criterion
from autoprune.prune._statistics import Stats
from autoprune.prune.units import ChannelUnits, HistoryEntry, StructuredGroup
from autoprune.prune.units._grouped import whole_offsets


@dataclass(frozen=True)
class _Slice:
    """Where one coupled module keeps one group's channels: tensor, dimension, index per channel."""

    tensor: torch.Tensor
    dim: int
    index: torch.Tensor  # position in ``dim`` of each entry
    channel: torch.Tensor  # the group's (original) channel each entry belongs to


class MaskedChannels:
    """A :class:`StructuredUnits` over a traced model whose ``remove`` zeroes (see the module docstring)."""

    def __init__(self, model: nn.Module, example_input: torch.Tensor) -> None:
        self.model = model
        self._units = ChannelUnits(model, example_input)
        self.groups: dict[str, StructuredGroup] = self._units.groups
        self.original_channels: dict[str, int] = dict(self._units.original_channels)
        self._dense = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self._slices = {group: self._plan(group) for group in self.groups}
        self._removed: dict[str, set[int]] = {group: set() for group in self.groups}
        self._dense_scores: dict[tuple, torch.Tensor] = {}

    def _plan(self, group: str) -> list[_Slice]:
        slices = []
        graph = self._units.graph
        for item in self._units._full_group(group):  # noqa: SLF001 - same package, one trace
            module, handler = item.dep.target.module, item.dep.handler
            if not isinstance(module, nn.Module) or None in item.root_idxs:
                continue
            index = torch.as_tensor(item.idxs, dtype=torch.long)
            channel = torch.as_tensor(item.root_idxs, dtype=torch.long)
            if graph.is_out_channel_pruning_fn(handler):
                slices += [
                    _Slice(p, 0, index, channel)
                    for p in module.parameters(recurse=False)
                    if p.dim() >= 1 and p.shape[0] > int(index.max())
                ]
            elif (
                graph.is_in_channel_pruning_fn(handler)
                and isinstance(module, PRUNABLE_TYPES)
                and getattr(module, "groups", 1) == 1
            ):
                weight = module.weight
                dim = 0 if isinstance(module, nn.ConvTranspose2d) else 1
                if weight.shape[dim] > int(index.max()):
                    slices.append(_Slice(weight, dim, index, channel))
        return slices

    # ------------------------------------------------------------------ StructuredUnits

    def group_of(self, layer: str) -> str:
        return self._units.group_of(layer)

    def channels(self, group: str) -> int:
        """Channels of ``group`` not zeroed."""
        return self.original_channels[group] - len(self._removed[group])

    def _kept(self, group: str) -> list[int]:
        return [c for c in range(self.original_channels[group]) if c not in self._removed[group]]

    def channel_scores(self, group: str, criterion: Criterion, stats: Stats) -> torch.Tensor:
        """Scores of the channels not zeroed, in their order (as removal would number them).

        Scores of the dense model are kept per criterion (and statistics object):
        every candidate starts from the same dense weights, so they are computed once.
        """
        dense = not self._removed[group]
        key = (group, criterion.name, id(stats) if criterion.needs else None)
        if dense and key in self._dense_scores:
            return self._dense_scores[key]
        scores = self._units.channel_scores(group, criterion, stats)
        scores = scores[torch.as_tensor(self._kept(group), dtype=torch.long)]
        if dense:
            self._dense_scores[key] = scores
        return scores

    def remove(self, group: str, indices: Iterable[int]) -> None:
        """Zero channels ``indices`` (numbered among those not zeroed yet) of ``group``."""
        kept = self._kept(group)
        blocks = self._units.channel_blocks.get(group, 1)
        if blocks > 1:  # a grouped convolution: whole offsets, as physical removal takes them
            indices = whole_offsets([int(i) for i in indices], blocks, len(kept))
        chosen = {kept[int(i)] for i in indices}
        if not chosen:
            return
        if len(chosen) >= len(kept):
            raise PruningError(f"Cannot remove all {len(kept)} channels of group '{group}'.")
        self._removed[group] |= chosen
        gone = torch.as_tensor(sorted(chosen), dtype=torch.long)
        with torch.no_grad():
            for piece in self._slices[group]:
                hit = torch.isin(piece.channel, gone)
                piece.tensor.index_fill_(piece.dim, piece.index[hit], 0.0)

    @property
    def history(self) -> list[HistoryEntry]:
        return [
            HistoryEntry.of(group, "channels", self._removed[group], units=n)
            for group, n in self.original_channels.items()
        ]

    # ------------------------------------------------------------------ reuse

    def restore(self) -> None:
        """Put the dense weights back: nothing zeroed, ready for the next candidate."""
        self.model.load_state_dict(self._dense)
        self._removed = {group: set() for group in self.groups}
