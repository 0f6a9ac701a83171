"""Structured units: what can be removed from a model whole, and the record of what was.

One interface, :class:`StructuredUnits`, two implementations: :class:`ChannelUnits`
(channels, through torch-pruning's dependency groups) and :class:`TransformerUnits`
(attention heads and feed-forward neurons of blocks of a detected or declared
:class:`AttentionLayout` / :class:`FeedForwardLayout`, see :func:`declare_layouts`).
What was removed is a list of :class:`HistoryEntry`, stored as JSON in the weights
file and replayed by :func:`replay_history` on a fresh model. Finding the units
runs under a time limit; what is left out is named in the units' ``notes``.

Example:
    >>> import torch
    >>> from autoprune.tasks.models import DigitsMLP
    >>> units = structured_units(DigitsMLP(), torch.zeros(1, 64))
    >>> isinstance(units, StructuredUnits), list(units.groups)
    (True, ['fc1', 'fc2'])
    >>> units.remove("fc2", [0]); history_to_json(units.history)
    '[["fc1", true, "00000000000000000000000000000000"], ["fc2", true, "0000000000000001"]]'
"""

from autoprune.prune.units._channels import ChannelUnits
from autoprune.prune.units._conv1d import TransposedLinear, convert_conv1d
from autoprune.prune.units._history import (
    KINDS,
    HistoryEntry,
    as_history,
    decode_removed,
    encode_removed,
    history_to_json,
)
from autoprune.prune.units._layouts import (
    ATTENTION_DETECTORS,
    FEED_FORWARD_DETECTORS,
    AttentionLayout,
    FeedForwardLayout,
    declare_layouts,
    find_layouts,
)
from autoprune.prune.units._mha import HeadPrunedMultiheadAttention
from autoprune.prune.units._protocol import Stats, StructuredGroup, StructuredUnits
from autoprune.prune.units._select import (
    DISCOVERY_SECONDS,
    has_transformer_blocks,
    replay_history,
    structured_units,
)
from autoprune.prune.units._time_limit import time_limit
from autoprune.prune.units._transformer import TransformerUnits

__all__ = [
    "ATTENTION_DETECTORS",
    "DISCOVERY_SECONDS",
    "FEED_FORWARD_DETECTORS",
    "KINDS",
    "AttentionLayout",
    "ChannelUnits",
    "FeedForwardLayout",
    "HeadPrunedMultiheadAttention",
    "HistoryEntry",
    "Stats",
    "StructuredGroup",
    "StructuredUnits",
    "TransformerUnits",
    "TransposedLinear",
    "as_history",
    "convert_conv1d",
    "declare_layouts",
    "decode_removed",
    "encode_removed",
    "find_layouts",
    "has_transformer_blocks",
    "history_to_json",
    "replay_history",
    "structured_units",
    "time_limit",
]
