"""The pruning engine: criteria, scopes, granularities and the Pruner.

Example:
    >>> from autoprune.prune import available_criteria
    >>> available_criteria()
    ('l1', 'l2', 'random', 'taylor', 'obd', 'activation', 'lamp')
"""

from autoprune.policy import CRITERIA, GRANULARITIES, SCOPES
from autoprune.prune._allocate import cap_count, channels_to_remove, global_counts, local_count
from autoprune.prune._criteria import Criterion, get_criterion, lamp_normalise
from autoprune.prune._engine import Pruner
from autoprune.prune._masks import MaskSet, nm_mask, unstructured_mask
from autoprune.prune._statistics import collect_statistics
from autoprune.prune._structured import (
    ChannelPruner,
    StructuredGroup,
    decode_removed,
    encode_removed,
    replay_history,
    structured_units,
)
from autoprune.prune._transformer import TransformerUnits, find_blocks


def available_criteria() -> tuple[str, ...]:
    """Short names of the criteria."""
    return CRITERIA


__all__ = [
    "GRANULARITIES",
    "SCOPES",
    "ChannelPruner",
    "Criterion",
    "MaskSet",
    "Pruner",
    "StructuredGroup",
    "TransformerUnits",
    "available_criteria",
    "cap_count",
    "channels_to_remove",
    "collect_statistics",
    "decode_removed",
    "encode_removed",
    "find_blocks",
    "get_criterion",
    "global_counts",
    "lamp_normalise",
    "local_count",
    "nm_mask",
    "replay_history",
    "structured_units",
    "unstructured_mask",
]
