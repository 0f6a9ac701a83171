"""The pruning engine: criteria, scopes, granularities, structured units and the Pruner.

Example:
    >>> from autoprune.prune import available_criteria
    >>> available_criteria()
    ('l1', 'l2', 'random', 'taylor', 'obd', 'activation', 'lamp', 'wanda', 'flap')
"""

from autoprune.policy import CRITERIA, GRANULARITIES, SCOPES
from autoprune.prune._allocate import cap_count, channels_to_remove, global_counts, local_count
from autoprune.prune._calibration import Calibration
from autoprune.prune._criteria import (
    Criterion,
    get_criterion,
    lamp_normalise,
    statistics_needed,
)
from autoprune.prune._engine import Pruner
from autoprune.prune._masks import MaskSet, nm_mask, unstructured_mask
from autoprune.prune._shrink import GroupShrink
from autoprune.prune._statistics import collect_statistics
from autoprune.prune.units import (
    AttentionLayout,
    ChannelUnits,
    FeedForwardLayout,
    HistoryEntry,
    StructuredGroup,
    StructuredUnits,
    TransformerUnits,
    convert_conv1d,
    declare_layouts,
    decode_removed,
    encode_removed,
    find_layouts,
    replay_history,
    structured_units,
)


def available_criteria() -> tuple[str, ...]:
    """Short names of the criteria."""
    return CRITERIA


__all__ = [
    "GRANULARITIES",
    "SCOPES",
    "AttentionLayout",
    "Calibration",
    "ChannelUnits",
    "Criterion",
    "FeedForwardLayout",
    "GroupShrink",
    "HistoryEntry",
    "MaskSet",
    "Pruner",
    "StructuredGroup",
    "StructuredUnits",
    "TransformerUnits",
    "available_criteria",
    "cap_count",
    "channels_to_remove",
    "collect_statistics",
    "convert_conv1d",
    "declare_layouts",
    "decode_removed",
    "encode_removed",
    "find_layouts",
    "get_criterion",
    "statistics_needed",
    "global_counts",
    "lamp_normalise",
    "local_count",
    "nm_mask",
    "replay_history",
    "structured_units",
    "unstructured_mask",
]
