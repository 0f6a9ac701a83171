"""Declared layouts of transformer blocks: where the heads and the feed-forward neurons are.

An :class:`AttentionLayout` names the query, key, value and output projections
of one attention block, its number of query heads, of key/value heads (fewer
under grouped-query attention) and the head size, and the fields of the block
module that record them; a :class:`FeedForwardLayout` names the layers that
make the neurons and the one that reads them. :func:`find_layouts` finds every
block by asking each detector of :data:`ATTENTION_DETECTORS` and
:data:`FEED_FORWARD_DETECTORS` about every module, after the layouts declared on
the model (:func:`declare_layouts`). A detector reads the module's own fields
(head size, head counts) and the shapes of its linear layers; the names of the
projections only tell the query from the key. The dataclasses live in
``_layout_types``, the detectors in ``_detect_attention`` and ``_detect_feed_forward``.

Detected layouts: separate projections (BERT/RoBERTa ``query/key/value`` with
``output.dense``, DistilBERT ``q_lin/.../out_lin``, LLaMA/Mistral/Qwen2 and
Hugging Face ViT ``q_proj/k_proj/v_proj/o_proj`` with grouped-query attention,
Wav2Vec2/Whisper/BART ``out_proj``), a fused projection (GPT-2's ``c_attn``
once converted by :func:`convert_conv1d`, timm's ``qkv``) and
``nn.MultiheadAttention``; feed-forward blocks of two linear layers (up, down)
or three (gate, up, down), in a module or a ``Sequential``.

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

from collections.abc import Callable, Iterable

from torch import nn

from autoprune.errors import PruningError
from autoprune.prune.units._detect_attention import (
    fused_projection,
    multihead_attention,
    output_beside,
    separate_projections,
)
from autoprune.prune.units._detect_feed_forward import (
    bert_feed_forward,
    module_feed_forward,
    sequential_feed_forward,
)
from autoprune.prune.units._layout_types import (
    AttentionLayout,
    Detector,
    FeedForwardLayout,
    layer_names,
)

LAYOUTS_ATTRIBUTE = "_autoprune_layouts"


#: Detectors of attention blocks: ``(prefix, module) -> AttentionLayout | None``.
ATTENTION_DETECTORS: tuple[Detector, ...] = (
    multihead_attention,
    separate_projections,
    output_beside,
    fused_projection,
)
#: Detectors of feed-forward blocks: ``(prefix, module) -> FeedForwardLayout | None``.
FEED_FORWARD_DETECTORS: tuple[Callable[[str, nn.Module], FeedForwardLayout | None], ...] = (
    bert_feed_forward,
    module_feed_forward,
    sequential_feed_forward,
)


def declare_layouts(
    model: nn.Module,
    attention: Iterable[AttentionLayout] = (),
    feed_forward: Iterable[FeedForwardLayout] = (),
) -> nn.Module:
    """Declare the layouts of blocks no detector knows (names from ``model``'s root); returns ``model``.

    Example:
        >>> from torch import nn
        >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 4))
        >>> model = declare_layouts(model, feed_forward=[FeedForwardLayout(up="0", down="2")])
        >>> list(find_layouts(model)[1])
        ['0']
    """
    attention, feed_forward = tuple(attention), tuple(feed_forward)
    names = dict(model.named_modules())
    for layout in (*attention, *feed_forward):
        for name in layer_names(layout):
            if name.rpartition(".")[0 if name.endswith("_weight") else 2] not in names and (
                name not in names
            ):
                raise PruningError(
                    f"The declared layout names layer '{name:.200}', which the model does not have."
                )
    object.__setattr__(model, LAYOUTS_ATTRIBUTE, (attention, feed_forward))
    return model


def declared_layouts(
    model: nn.Module,
) -> tuple[tuple[AttentionLayout, ...], tuple[FeedForwardLayout, ...]]:
    """The layouts :func:`declare_layouts` put on ``model`` (none by default)."""
    return getattr(model, LAYOUTS_ATTRIBUTE, ((), ()))


def find_layouts(
    model: nn.Module,
) -> tuple[dict[str, AttentionLayout], dict[str, FeedForwardLayout]]:
    """Every attention block (by its unit name) and feed-forward block (by its ``up`` layer)."""
    declared_attention, declared_ffn = declared_layouts(model)
    attention = {layout.unit: layout for layout in declared_attention}
    feed_forward = {layout.up: layout for layout in declared_ffn}
    taken = {
        name for layout in (*declared_attention, *declared_ffn) for name in layer_names(layout)
    }
    for name, module in model.named_modules():
        prefix = f"{name}." if name else ""
        for detect in ATTENTION_DETECTORS:
            layout = detect(prefix, module)
            if layout is not None and not taken & set(layer_names(layout)):
                attention[layout.unit] = layout
                taken.update(layer_names(layout))
                break
    for name, module in model.named_modules():
        prefix = f"{name}." if name else ""
        for detect in FEED_FORWARD_DETECTORS:
            found = detect(prefix, module)
            if found is not None and not taken & set(layer_names(found)):
                feed_forward[found.up] = found
                taken.update(layer_names(found))
                break
    return attention, feed_forward
