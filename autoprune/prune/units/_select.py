"""Which structured units a model has, and replaying a history on a fresh model."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from autoprune.errors import PruningError
from autoprune.prune.units._channels import CHANNEL_KINDS, ChannelUnits, replay_channels
from autoprune.prune.units._history import HistoryEntry, as_history
from autoprune.prune.units._layouts import find_layouts
from autoprune.prune.units._protocol import StructuredUnits
from autoprune.prune.units._transformer import TRANSFORMER_KINDS, TransformerUnits


def has_transformer_blocks(model: nn.Module) -> bool:
    """Whether ``model`` has an attention or feed-forward block of a declared layout."""
    attention, feed_forward = find_layouts(model)
    return bool(attention or feed_forward)


def structured_units(model: nn.Module, example_input: torch.Tensor) -> StructuredUnits:
    """The structured units of a model: heads and neurons of transformer blocks, else channels.

    Example:
        >>> from autoprune.tasks.models import DigitsMLP
        >>> units = structured_units(DigitsMLP(), torch.zeros(1, 64))
        >>> type(units).__name__, units.original_channels
        ('ChannelUnits', {'fc1': 128, 'fc2': 64})
    """
    if has_transformer_blocks(model):
        return TransformerUnits(model, example_input)
    return ChannelUnits(model, example_input)


def replay_history(
    model: nn.Module, example_input: torch.Tensor, history: Iterable[HistoryEntry | list]
) -> nn.Module:
    """Apply a recorded pruning history to a fresh model of the same architecture, in place.

    ``history`` holds entries of one family: channels, or heads and neurons; lists
    in the stored JSON form are decoded first.

    Example:
        >>> from autoprune.tasks.models import DigitsMLP
        >>> model = replay_history(DigitsMLP(), torch.zeros(1, 64), [["fc1", True, "0f"]])
        >>> model.fc1.out_features, model.fc2.in_features
        (124, 124)
    """
    entries = as_history(history)
    kinds = {entry.kind for entry in entries}
    if kinds <= set(TRANSFORMER_KINDS) and kinds:
        TransformerUnits(model).replay(entries)
    elif kinds <= set(CHANNEL_KINDS):
        replay_channels(model, example_input, entries)
    else:
        raise PruningError(
            f"A pruning history holds either channels or heads and neurons. Got kinds {sorted(kinds)} instead."
        )
    return model
