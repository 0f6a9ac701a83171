"""Attention heads and feed-forward neurons as structured units.

The blocks are found through their declared layouts (see
:func:`~autoprune.prune.units.find_layouts`). A group is all the heads of one
attention block (named after its query layer) or all the neurons of one
feed-forward block (named after the layer that makes them). Removing heads
slices whole heads out of the query, key and value projections and the
matching input columns of the output projection, and updates the block's head
count fields; the attention reshapes by head size, so the model keeps running.

Example:
    >>> from torch import nn
    >>> block = nn.Module()
    >>> block.intermediate = nn.Module(); block.intermediate.dense = nn.Linear(4, 16)
    >>> block.output = nn.Module(); block.output.dense = nn.Linear(16, 4)
    >>> units = TransformerUnits(block)
    >>> list(units.groups), units.channels("intermediate.dense")
    (['intermediate.dense'], 16)
    >>> units.remove("intermediate.dense", [0, 5]); block.output.dense.in_features
    14
    >>> units.history[0].to_json()
    ['intermediate.dense', 'neurons', '0021']
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from autoprune.errors import PruningError
from autoprune.prune._criteria import Criterion
from autoprune.prune.units._history import HistoryEntry
from autoprune.prune.units._layouts import AttentionLayout, FeedForwardLayout, find_layouts
from autoprune.prune.units._protocol import Stats, StructuredGroup

#: the history kinds these units are recorded as
TRANSFORMER_KINDS = ("heads", "neurons")


def _keep_rows(layer: nn.Linear, keep: list[int]) -> None:
    layer.weight = nn.Parameter(layer.weight.data[keep].clone())
    if layer.bias is not None:
        layer.bias = nn.Parameter(layer.bias.data[keep].clone())
    layer.out_features = len(keep)


def _keep_columns(layer: nn.Linear, keep: list[int]) -> None:
    layer.weight = nn.Parameter(layer.weight.data[:, keep].clone())
    layer.in_features = len(keep)


class TransformerUnits:
    """Attention heads and feed-forward neurons of a model's transformer blocks."""

    def __init__(self, model: nn.Module, example_input: torch.Tensor | None = None) -> None:
        self.model = model
        self._by_name = dict(model.named_modules())
        self._attention, self._ffn = find_layouts(model)
        self.groups: dict[str, StructuredGroup] = {}
        self._layer_group: dict[str, str] = {}
        for unit, layout in self._attention.items():
            self.groups[unit] = StructuredGroup(
                unit,
                layout.projections,
                (layout.output,),
                (layout.head_dim,),
                unit_size=layout.head_dim,
            )
            self._layer_group.update({layer: unit for layer in layout.projections})
        for unit, ffn in self._ffn.items():
            self.groups[unit] = StructuredGroup(unit, (unit,), (ffn.down,), (1,))
            self._layer_group[unit] = unit
        order = {name: i for i, name in enumerate(self._by_name)}
        self.groups = dict(sorted(self.groups.items(), key=lambda kv: order.get(kv[0], 0)))
        self.original_channels = {unit: self.channels(unit) for unit in self.groups}
        self._kept = {unit: list(range(n)) for unit, n in self.original_channels.items()}

    def group_of(self, layer: str) -> str:
        """The unit ``layer`` belongs to: a query/key/value projection or a feed-forward layer."""
        if layer in self._layer_group:
            return self._layer_group[layer]
        raise PruningError(
            f"Layer '{layer}' cannot be pruned structurally on its own. In a transformer block, name the query "
            "layer to remove attention heads, or the intermediate layer to remove feed-forward neurons."
        )

    def _linear(self, name: str) -> nn.Linear:
        return self._by_name[name]

    def channels(self, unit: str) -> int:
        """Current heads of an attention unit, or neurons of a feed-forward unit."""
        if unit in self._attention:
            layout = self._attention[unit]
            return self._linear(layout.query).out_features // layout.head_dim
        return self._linear(self._ffn[unit].up).out_features

    def channel_scores(self, unit: str, criterion: Criterion, stats: Stats) -> torch.Tensor:
        """One score per head or neuron: the criterion summed over every weight that goes with it."""
        group = self.groups[unit]
        n, size = self.channels(unit), group.unit_size
        total = torch.zeros(n, dtype=torch.float64)
        for name in group.out_layers:
            scores = criterion.weight_scores(self._by_name[name], stats.get(name, {}))
            total = total + scores.double().cpu().reshape(n, -1).sum(1)
        for name in group.in_layers:
            scores = criterion.weight_scores(self._by_name[name], stats.get(name, {}))
            total = total + scores.double().cpu().reshape(scores.shape[0], n, size).sum((0, 2))
        return total

    def remove(self, unit: str, indices: Iterable[int]) -> None:
        """Remove heads (or neurons) ``indices`` (current numbering) of ``unit``, physically."""
        drop = {int(i) for i in indices}
        if not drop:
            return
        n = self.channels(unit)
        if len(drop) >= n:
            raise PruningError(f"Cannot remove all {n} heads or neurons of unit '{unit}'.")
        if unit in self._attention:
            self._cut_heads(self._attention[unit], drop)
        else:
            self._cut_neurons(self._ffn[unit], drop)
        self._kept[unit] = [k for i, k in enumerate(self._kept[unit]) if i not in drop]

    def _cut_heads(self, layout: AttentionLayout, drop: set[int]) -> None:
        if layout.kv_heads != layout.heads:
            raise PruningError(
                f"Attention block '{layout.block}' groups its {layout.heads} query heads over "
                f"{layout.kv_heads} key/value heads; removing heads from it is not supported."
            )
        size, heads = layout.head_dim, self._linear(layout.query).out_features // layout.head_dim
        keep = [h * size + j for h in range(heads) if h not in drop for j in range(size)]
        for name in layout.projections:
            _keep_rows(self._linear(name), keep)
        _keep_columns(self._linear(layout.output), keep)
        block = self._by_name[layout.block]
        for field in layout.head_count_fields:
            setattr(block, field, len(keep) // size)
        for field in layout.width_fields:
            setattr(block, field, len(keep))

    def _cut_neurons(self, layout: FeedForwardLayout, drop: set[int]) -> None:
        up = self._linear(layout.up)
        keep = [i for i in range(up.out_features) if i not in drop]
        _keep_rows(up, keep)
        _keep_columns(self._linear(layout.down), keep)

    def replay(self, history: Iterable[HistoryEntry]) -> None:
        """Apply a recorded history (indices of the units as first built) to this model."""
        for entry in history:
            if entry.unit not in self.groups:
                raise PruningError(
                    f"The pruning history names unit '{entry.unit}', which this model does not have."
                )
            positions = [self._kept[entry.unit].index(i) for i in entry.removed]
            self.remove(entry.unit, positions)

    @property
    def history(self) -> list[HistoryEntry]:
        """A ``heads`` or ``neurons`` entry with a bitmask of removed originals for every unit."""
        return [
            HistoryEntry.of(
                unit,
                "heads" if unit in self._attention else "neurons",
                set(range(n)) - set(self._kept[unit]),
                units=n,
            )
            for unit, n in self.original_channels.items()
        ]
