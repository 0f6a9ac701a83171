"""Attention heads and feed-forward neurons as structured units.

The blocks are found through their declared or detected layouts (see
:func:`~autoprune.prune.units.find_layouts`) and, given an example input, checked
on the model (:func:`~autoprune.prune.units._probe.probe_layouts`). A group is
the units of one attention block (named after its query projection, or the
output projection of ``nn.MultiheadAttention``) or the neurons of one
feed-forward block (named after the layer that makes them). The units of an
attention block are its heads, or under grouped-query attention its key/value
heads, each removed with the query heads that share it. Removing heads slices
whole heads out of the projections and the matching input columns of the
output projection, and updates the block's head count fields, so the model
keeps running.

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
from types import SimpleNamespace

import torch
from torch import nn

from autoprune.errors import PruningError
from autoprune.prune._criteria import Criterion
from autoprune.prune.units._history import HistoryEntry
from autoprune.prune.units._layouts import AttentionLayout, find_layouts
from autoprune.prune.units._probe import probe_layouts
from autoprune.prune.units._protocol import Stats, StructuredGroup
from autoprune.prune.units._slicing import (
    cut_heads,
    cut_neurons,
    head_rows,
    kv_heads_now,
    weight,
)

#: the history kinds these units are recorded as
TRANSFORMER_KINDS = ("heads", "neurons")


def _attention_group(unit: str, layout: AttentionLayout, modules: dict) -> StructuredGroup:
    size, group = layout.head_dim, layout.group_size
    per_unit = {layout.key: size, layout.value: size, layout.query: group * size}
    if layout.fused:
        per_unit = {layout.query: (group + 2) * size}
    per_unit.update({gate: group * size for gate in layout.gates})
    outs = [name for name in layout.projections if name in modules]
    return StructuredGroup(
        unit,
        tuple(outs),
        (layout.output,),
        (group * size,),
        unit_size=group * size,
        out_factors=tuple(per_unit[name] for name in outs),
    )


class TransformerUnits:
    """Attention heads and feed-forward neurons of a model's transformer blocks.

    With ``example_input``, each kind of block is first checked on the model and
    the kinds that cannot lose a unit are left out, each with a line in :attr:`notes`.
    """

    def __init__(self, model: nn.Module, example_input: torch.Tensor | None = None) -> None:
        self.model = model
        self.notes: list[str] = []
        attention, ffn = find_layouts(model)
        if example_input is not None:
            attention, ffn, self.notes = probe_layouts(model, example_input, attention, ffn)
        self._attention, self._ffn = attention, ffn
        self._by_name = dict(model.named_modules())
        self.groups: dict[str, StructuredGroup] = {}
        self._layer_group: dict[str, str] = {}
        for unit, layout in attention.items():
            self.groups[unit] = _attention_group(unit, layout, self._by_name)
            self._layer_group.update(
                {layer: unit for layer in (unit, *self.groups[unit].out_layers)}
            )
        for unit, ffn_layout in ffn.items():
            self.groups[unit] = StructuredGroup(
                unit, (unit, *ffn_layout.gates), (ffn_layout.down,), (1,)
            )
            self._layer_group.update({layer: unit for layer in (unit, *ffn_layout.gates)})
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

    def channels(self, unit: str) -> int:
        """Current heads (key/value heads under grouped-query attention) or neurons of ``unit``."""
        if unit in self._attention:
            return kv_heads_now(self._by_name, self._attention[unit])
        return self._by_name[self._ffn[unit].up].out_features

    def _row_scores(self, name: str, criterion: Criterion, stats: Stats) -> torch.Tensor | None:
        """The criterion summed per output row of layer (or weight) ``name``; None if it cannot score it."""
        if name in self._by_name:
            layer = self._by_name[name]
        elif criterion.needs:
            return None  # a weight of a module that is no layer: no statistics were collected
        else:
            layer = SimpleNamespace(weight=weight(self._by_name, name).detach())
        scores = criterion.weight_scores(layer, stats.get(name, {}))
        return scores.double().cpu().reshape(scores.shape[0], -1).sum(1)

    def _column_scores(self, name: str, criterion: Criterion, stats: Stats) -> torch.Tensor:
        scores = criterion.weight_scores(self._by_name[name], stats.get(name, {}))
        return scores.double().cpu().sum(0)

    def channel_scores(self, unit: str, criterion: Criterion, stats: Stats) -> torch.Tensor:
        """One score per unit: the criterion summed over every weight that goes with it."""
        total = torch.zeros(self.channels(unit), dtype=torch.float64)
        if unit in self._attention:
            layout = self._attention[unit]
            parts = (
                []
                if criterion.units_from_inputs
                else [(n, self._row_scores(n, criterion, stats)) for n in layout.projections]
            )
            parts.append((layout.output, self._column_scores(layout.output, criterion, stats)))
            for name, scores in parts:
                if scores is not None:
                    key = layout.query if name == layout.output else name
                    rows = head_rows(self._by_name, layout, key)[: len(scores)]
                    total.scatter_add_(0, rows, scores)
            return total
        layout = self._ffn[unit]
        for name in () if criterion.units_from_inputs else (layout.up, *layout.gates):
            total += self._row_scores(name, criterion, stats)
        return total + self._column_scores(layout.down, criterion, stats)

    def remove(self, unit: str, indices: Iterable[int]) -> None:
        """Remove heads (or neurons) ``indices`` (current numbering) of ``unit``, physically."""
        drop = {int(i) for i in indices}
        if not drop:
            return
        n = self.channels(unit)
        if len(drop) >= n:
            raise PruningError(f"Cannot remove all {n} heads or neurons of unit '{unit}'.")
        if unit in self._attention:
            cut_heads(self._by_name, self._attention[unit], drop)
        else:
            cut_neurons(self._by_name, self._ffn[unit], drop)
        self._kept[unit] = [k for i, k in enumerate(self._kept[unit]) if i not in drop]

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
