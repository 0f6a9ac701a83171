"""Declared layouts of transformer blocks: where the heads and the feed-forward neurons are.

An :class:`AttentionLayout` names the query, key, value and output projections
of one attention block (linear layers of the model), its number of heads, of
key/value heads and the head size, and the fields of the block module that
record the head count; a :class:`FeedForwardLayout` names the layer that makes
the neurons and the one that reads them. :func:`find_layouts` finds every block
by asking each detector of :data:`ATTENTION_DETECTORS` and
:data:`FEED_FORWARD_DETECTORS` about every module; a detector reads the
module's own fields and returns a layout or None. The BERT layout is the one
declared today; another layout (GPT-2's fused ``c_attn``, LLaMA's grouped
``q/k/v/o_proj``, ``nn.MultiheadAttention``) is one more detector.

Example:
    >>> from torch import nn
    >>> attention = nn.Module()
    >>> attention.self = nn.Module()
    >>> for name in ("query", "key", "value"):
    ...     setattr(attention.self, name, nn.Linear(8, 8))
    >>> attention.self.attention_head_size, attention.self.num_attention_heads = 4, 2
    >>> attention.output = nn.Module(); attention.output.dense = nn.Linear(8, 8)
    >>> block = nn.Module(); block.attention = attention
    >>> heads, _ = find_layouts(block)
    >>> layout = heads["attention.self.query"]
    >>> layout.output, layout.heads, layout.head_dim
    ('attention.output.dense', 2, 4)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class AttentionLayout:
    """One attention block: its projections (module names), heads and head size.

    ``query``, ``key`` and ``value`` produce ``heads * head_dim`` features (head h
    is rows ``h * head_dim`` to ``(h + 1) * head_dim``; grouped-query layouts have
    ``kv_heads`` < ``heads`` key/value heads); ``output`` reads them as its inputs.
    After heads are removed, ``head_count_fields`` of module ``block`` are set to the
    heads left and ``width_fields`` to the heads left times ``head_dim``.
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

    @property
    def projections(self) -> tuple[str, str, str]:
        """The layers whose outputs are the heads."""
        return (self.query, self.key, self.value)


@dataclass(frozen=True)
class FeedForwardLayout:
    """One feed-forward block: ``up`` makes the neurons (its outputs), ``down`` reads them."""

    up: str
    down: str


def _child(module: object, path: str) -> object:
    for part in path.split("."):
        module = getattr(module, part, None)
    return module


def _bert_attention(prefix: str, module: nn.Module) -> AttentionLayout | None:
    """BERT's attention: ``self.query/key/value`` with ``attention_head_size``, ``output.dense``."""
    attention, dense = _child(module, "self"), _child(module, "output.dense")
    if not (
        isinstance(attention, nn.Module)
        and isinstance(dense, nn.Linear)
        and hasattr(attention, "attention_head_size")
        and all(
            isinstance(getattr(attention, p, None), nn.Linear) for p in ("query", "key", "value")
        )
    ):
        return None
    head_dim = int(attention.attention_head_size)
    heads = attention.query.out_features // head_dim
    return AttentionLayout(
        query=f"{prefix}self.query",
        key=f"{prefix}self.key",
        value=f"{prefix}self.value",
        output=f"{prefix}output.dense",
        heads=heads,
        kv_heads=heads,
        head_dim=head_dim,
        block=f"{prefix}self",
        head_count_fields=("num_attention_heads",),
        width_fields=("all_head_size",),
    )


def _bert_feed_forward(prefix: str, module: nn.Module) -> FeedForwardLayout | None:
    """BERT's feed-forward block: ``intermediate.dense`` feeding ``output.dense``."""
    up, down = _child(module, "intermediate.dense"), _child(module, "output.dense")
    if (
        isinstance(up, nn.Linear)
        and isinstance(down, nn.Linear)
        and up.out_features == down.in_features
    ):
        return FeedForwardLayout(up=f"{prefix}intermediate.dense", down=f"{prefix}output.dense")
    return None


#: Detectors of attention blocks: ``(prefix, module) -> AttentionLayout | None``.
ATTENTION_DETECTORS: tuple[Callable[[str, nn.Module], AttentionLayout | None], ...] = (
    _bert_attention,
)
#: Detectors of feed-forward blocks: ``(prefix, module) -> FeedForwardLayout | None``.
FEED_FORWARD_DETECTORS: tuple[Callable[[str, nn.Module], FeedForwardLayout | None], ...] = (
    _bert_feed_forward,
)


def find_layouts(
    model: nn.Module,
) -> tuple[dict[str, AttentionLayout], dict[str, FeedForwardLayout]]:
    """Every attention block (by its query layer) and feed-forward block (by its ``up`` layer)."""
    attention: dict[str, AttentionLayout] = {}
    feed_forward: dict[str, FeedForwardLayout] = {}
    for name, module in model.named_modules():
        prefix = f"{name}." if name else ""
        for detect in ATTENTION_DETECTORS:
            layout = detect(prefix, module)
            if layout is not None:
                attention[layout.query] = layout
                break
        for detect in FEED_FORWARD_DETECTORS:
            found = detect(prefix, module)
            if found is not None:
                feed_forward[found.up] = found
                break
    return attention, feed_forward
