"""The layout dataclasses of transformer blocks, and the module fields that describe heads.

An :class:`AttentionLayout` names the query, key, value and output projections
of one attention block, its number of query heads, of key/value heads (fewer
under grouped-query attention) and the head size, and the fields of the block
module that record them; a :class:`FeedForwardLayout` names the layers that
make the neurons and the one that reads them.

Example:
    >>> layout = AttentionLayout("qkv", "qkv", "qkv", "proj", heads=4, kv_heads=4, head_dim=8,
    ...                          block="attn")
    >>> layout.fused, layout.group_size, layout.projections
    (True, 1, ('qkv',))
    >>> FeedForwardLayout(up="fc1", down="fc2").gates
    ()
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from autoprune.errors import PruningError

#: Fields that hold a module's number of query heads, of key/value heads, of the heads' width.
HEAD_COUNT_FIELDS = ("num_heads", "num_attention_heads", "n_heads", "n_head")
KV_COUNT_FIELDS = ("num_key_value_heads", "num_kv_heads", "n_kv_heads")
WIDTH_FIELDS = ("all_head_size", "split_size", "attn_dim", "inner_dim")
HEAD_SIZE_FIELDS = ("head_dim", "attention_head_size", "head_size", "d_head")
#: Names that tell the query, key, value and output projections apart (their shapes are checked).
ROLES = {
    "query": ("q_proj", "query", "q_lin", "q"),
    "key": ("k_proj", "key", "k_lin", "k"),
    "value": ("v_proj", "value", "v_lin", "v"),
    "output": ("o_proj", "out_proj", "out_lin", "o"),
}


@dataclass(frozen=True)
class AttentionLayout:
    """One attention block: its projections, heads and head size.

    ``query``, ``key`` and ``value`` name linear layers (or a ``*_weight`` parameter,
    as ``nn.MultiheadAttention``'s ``in_proj_weight``); one name for all three
    means a fused projection whose rows are ``[queries | keys | values]``. Query
    head h is rows ``h * head_dim`` to ``(h + 1) * head_dim``; with ``kv_heads`` <
    ``heads`` (grouped-query attention) each key/value head serves
    ``heads // kv_heads`` consecutive query heads and is removed with them.
    ``output`` reads the heads as its inputs. ``gates`` are more layers with one
    row block per query head, ``norms`` normalise the heads' width. After a
    removal, ``head_count_fields`` of module ``block`` are set to the query heads
    left, ``kv_count_fields`` to the key/value heads left and ``width_fields`` to
    the query heads left times ``head_dim``.
    """

    query: str
    key: str
    value: str
    output: str
    heads: int
    kv_heads: int
    head_dim: int
    block: str
    head_count_fields: tuple[str, ...] = ()
    width_fields: tuple[str, ...] = ()
    kv_count_fields: tuple[str, ...] = ()
    gates: tuple[str, ...] = ()
    norms: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if min(self.heads, self.kv_heads, self.head_dim) < 1 or self.heads % self.kv_heads:
            raise PruningError(
                f"The attention layout of '{self.block}' must have heads, kv_heads and head_dim >= 1 "
                f"with heads a multiple of kv_heads. Got {self.heads}, {self.kv_heads} and "
                f"{self.head_dim} instead."
            )

    @property
    def projections(self) -> tuple[str, ...]:
        """The layers (or weights) whose outputs are the heads, each named once."""
        return tuple(dict.fromkeys((self.query, self.key, self.value, *self.gates)))

    @property
    def fused(self) -> bool:
        """Whether one projection makes queries, keys and values."""
        return self.query == self.key == self.value

    @property
    def group_size(self) -> int:
        """Query heads per key/value head (1 without grouped-query attention)."""
        return self.heads // self.kv_heads

    @property
    def unit(self) -> str:
        """The name of this block's unit: its query projection (the output layer for a fused weight)."""
        return self.output if self.query.endswith("_weight") else self.query


@dataclass(frozen=True)
class FeedForwardLayout:
    """One feed-forward block: ``up`` makes the neurons (its outputs), ``down`` reads them.

    ``gates`` are more layers whose outputs are the same neurons (LLaMA's
    ``gate_proj`` beside ``up_proj``); ``norms`` normalise the neurons between.
    """

    up: str
    down: str
    gates: tuple[str, ...] = ()
    norms: tuple[str, ...] = ()


Detector = Callable[[str, nn.Module], "AttentionLayout | None"]


def layer_names(layout: AttentionLayout | FeedForwardLayout) -> tuple[str, ...]:
    """Every layer (or weight) a layout names.

    Example:
        >>> layer_names(FeedForwardLayout(up="fc1", down="fc2", norms=("ln",)))
        ('fc1', 'fc2', 'ln')
    """
    if isinstance(layout, AttentionLayout):
        return (*layout.projections, layout.output, *layout.norms)
    return (layout.up, layout.down, *layout.gates, *layout.norms)
