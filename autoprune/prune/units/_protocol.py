"""What the pruning engine needs of structured units, whatever they are.

A *structured unit* is something removed whole, physically: an output channel
and everything tied to it, an attention head, a feed-forward neuron. Units come
in *groups* (a dependency group of channels, the heads of one attention block,
the neurons of one feed-forward block), each named after a layer of the model.
:class:`StructuredUnits` is the one interface the engine, the cost model and
the sensitivity analysis use; ``channels`` and ``original_channels`` count a
group's units (channels, heads or neurons).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch

from autoprune.prune._criteria import Criterion
from autoprune.prune._statistics import Stats
from autoprune.prune.units._history import HistoryEntry


@dataclass(frozen=True)
class StructuredGroup:
    """Layers that lose the same units.

    ``out_layers`` lose ``unit_size`` outputs per unit (1 for a channel, the head
    size for an attention head), or ``out_factors[i]`` when given (a fused
    query/key/value layer loses three head sizes per head; under grouped-query
    attention the key and value layers lose one head size, the query layer as many
    as share it); ``in_layers`` lose inputs, ``in_factors[i]`` inputs per unit (49
    for a flatten of 7x7 maps into a linear layer); ``norm_layers`` (BatchNorm,
    LayerNorm, ...) lose their per-channel parameters and statistics.
    """

    name: str
    out_layers: tuple[str, ...]
    in_layers: tuple[str, ...]
    in_factors: tuple[int, ...] = ()
    norm_layers: tuple[str, ...] = ()
    unit_size: int = 1
    out_factors: tuple[int, ...] = ()

    def out_factor(self, layer: str) -> int:
        """Outputs ``layer`` (one of ``out_layers``) loses per unit removed."""
        if self.out_factors:
            return self.out_factors[self.out_layers.index(layer)]
        return self.unit_size


@runtime_checkable
class StructuredUnits(Protocol):
    """Groups of structured units of one model, their scores, and their physical removal."""

    #: the groups by name, in the model's definition order
    groups: dict[str, StructuredGroup]
    #: units per group before anything was removed
    original_channels: dict[str, int]
    #: one line per part of the model left out of the groups, saying why
    notes: list[str]

    def group_of(self, layer: str) -> str:
        """The group ``layer`` belongs to; a :class:`PruningError` says why it has none."""
        ...

    def channels(self, group: str) -> int:
        """Units ``group`` has now."""
        ...

    def channel_scores(self, group: str, criterion: Criterion, stats: Stats) -> torch.Tensor:
        """One score per current unit of ``group`` (higher: keep)."""
        ...

    def remove(self, group: str, indices: Iterable[int]) -> None:
        """Remove units ``indices`` (current numbering) of ``group``, physically."""
        ...

    @property
    def history(self) -> list[HistoryEntry]:
        """What was removed, one entry per group (replayable on a fresh model)."""
        ...
