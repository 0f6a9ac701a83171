"""Which structured units a model has, and replaying a history on a fresh model.

A model with attention blocks of a known or declared layout is pruned by heads
and feed-forward neurons (:class:`TransformerUnits`); any other model by
channels (:class:`ChannelUnits`), or, when it cannot be traced whole, by the
channels inside each of its blocks (:class:`BlockChannelUnits`). Finding the units runs under a time limit
(:data:`DISCOVERY_SECONDS`): past it, a :class:`PruningError` names the model
and what to do instead, and the process is never left hanging.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from autoprune.errors import PruningError
from autoprune.prune.units._blocks import BlockChannelUnits
from autoprune.prune.units._channels import CHANNEL_KINDS, ChannelUnits, replay_channels
from autoprune.prune.units._conv1d import is_conv1d
from autoprune.prune.units._history import HistoryEntry, as_history
from autoprune.prune.units._layouts import find_layouts
from autoprune.prune.units._protocol import StructuredUnits
from autoprune.prune.units._time_limit import fired, time_limit
from autoprune.prune.units._transformer import TRANSFORMER_KINDS, TransformerUnits

#: the longest finding a model's structured units may take (seconds)
DISCOVERY_SECONDS = 120.0


def has_transformer_blocks(model: nn.Module) -> bool:
    """Whether ``model`` has an attention or feed-forward block of a declared layout."""
    attention, feed_forward = find_layouts(model)
    return bool(attention or feed_forward)


def _conv1d_note(model: nn.Module) -> list[str]:
    found = [name for name, module in model.named_modules() if is_conv1d(module)]
    if not found:
        return []
    return [
        f"{len(found)} Hugging Face Conv1D layers (e.g. '{found[0]}') are not pruned: convert them "
        "with autoprune.prune.units.convert_conv1d(model) in build_model to prune their heads and neurons."
    ]


def structured_units(
    model: nn.Module, example_input: torch.Tensor, *, seconds: float | None = DISCOVERY_SECONDS
) -> StructuredUnits:
    """The structured units of a model: heads and neurons of transformer blocks, else channels.

    What is left out (a kind of block whose units cannot be removed, a layer whose
    channels cannot be grouped) is named in the units' ``notes``.

    Example:
        >>> from autoprune.tasks.models import DigitsMLP
        >>> units = structured_units(DigitsMLP(), torch.zeros(1, 64))
        >>> type(units).__name__, units.original_channels, units.notes
        ('ChannelUnits', {'fc1': 128, 'fc2': 64}, [])
    """
    what = f"Finding the structured units of {type(model).__name__}"
    try:
        with time_limit(seconds, what) as limit:
            notes = _conv1d_note(model)
            if find_layouts(model)[0]:
                units = TransformerUnits(model, example_input)
                if units.groups:
                    units.notes[:0] = notes
                    return units
                notes += units.notes
            try:
                channels = ChannelUnits(model, example_input)
            except PruningError as exc:
                channels = _block_by_block(model, example_input, exc, notes)
            channels.notes[:0] = notes
            return channels
    except TimeoutError as exc:
        if not fired(exc, limit):
            raise
        raise PruningError(
            f"{exc}: use unstructured or N:M granularity for this model, or declare its attention "
            "layout (Task(attention=[AttentionLayout(...)]))."
        ) from exc


def _block_by_block(
    model: nn.Module, example_input: torch.Tensor, error: PruningError, notes: list[str]
) -> BlockChannelUnits:
    """The channels inside the blocks of a model that cannot be traced whole; else ``error``."""
    blocks = BlockChannelUnits(model, example_input)
    if not blocks.groups:
        raise PruningError(f"{error} {' '.join(notes)}".strip()) from error
    reason = getattr(error, "reason", f" ({error})")
    blocks.notes.insert(
        0, f"The model cannot be traced whole{reason}: its channels are grouped block by block."
    )
    return blocks


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
        try:
            replay_channels(model, example_input, entries)
        except PruningError as exc:  # a model that can only be traced block by block
            blocks = BlockChannelUnits(model, example_input)
            if not all(entry.unit in blocks.groups for entry in entries if entry.removed):
                raise exc from None
            blocks.replay(entries)
    else:
        raise PruningError(
            f"A pruning history holds either channels or heads and neurons. Got kinds {sorted(kinds)} instead."
        )
    return model
