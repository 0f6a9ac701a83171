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
projections only tell the query from the key.

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
LAYOUTS_ATTRIBUTE = "_autoprune_layouts"


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


def _child(module: object, path: str) -> object:
    for part in path.split("."):
        module = getattr(module, part, None)
    return module


def _int_field(module: nn.Module, names: Iterable[str]) -> int | None:
    for name in names:
        value = getattr(module, name, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _fields(module: nn.Module, names: Iterable[str]) -> tuple[str, ...]:
    return tuple(n for n in names if isinstance(getattr(module, n, None), int))


def _linears(module: nn.Module) -> dict[str, nn.Linear]:
    return {n: c for n, c in module.named_children() if isinstance(c, nn.Linear)}


def _role(children: dict[str, nn.Linear], role: str) -> str | None:
    return next((n for n in ROLES[role] if n in children), None)


def _widths(module: nn.Module, width: int, skip: Iterable[str]) -> tuple[list[str], list[str]]:
    """Direct children other than ``skip`` acting on ``width`` features: linear gates and norms."""
    gates, norms = [], []
    for name, child in module.named_children():
        if name in skip:
            continue
        params = list(child.parameters(recurse=False))
        if isinstance(child, nn.Linear) and child.out_features == width:
            gates.append(name)
        elif params and all(p.dim() == 1 and p.shape[0] == width for p in params):
            norms.append(name)
    return gates, norms


def _layout(prefix: str, block: nn.Module, block_name: str, **names) -> AttentionLayout:
    """A layout with the head fields of ``block`` and names under ``prefix``."""
    full = {
        k: f"{prefix}{v}" if isinstance(v, str) else tuple(f"{prefix}{x}" for x in v)
        for k, v in names.pop("names").items()
    }
    return AttentionLayout(
        **full,
        **names,
        block=block_name,
        head_count_fields=_fields(block, HEAD_COUNT_FIELDS),
        kv_count_fields=_fields(block, KV_COUNT_FIELDS),
        width_fields=_fields(block, WIDTH_FIELDS),
    )


def _head_size(module: nn.Module, width: int) -> int | None:
    size = _int_field(module, HEAD_SIZE_FIELDS)
    heads = _int_field(module, HEAD_COUNT_FIELDS)
    if size is None and heads is not None and width % heads == 0:
        size = width // heads
    return size if size and width % size == 0 else None


def _core(module: nn.Module) -> tuple[dict[str, str], int, int, int] | None:
    """Query/key/value names, heads, key/value heads and head size of ``module``, if it has them."""
    children = _linears(module)
    roles = {r: _role(children, r) for r in ("query", "key", "value")}
    if None in roles.values():
        return None
    q, k, v = (children[roles[r]] for r in ("query", "key", "value"))
    size = _head_size(module, q.out_features)
    if size is None or k.out_features != v.out_features or k.out_features % size:
        return None
    heads, kv_heads = q.out_features // size, k.out_features // size
    if heads % kv_heads or q.in_features != k.in_features:
        return None
    return roles, heads, kv_heads, size


def separate_projections(prefix: str, module: nn.Module) -> AttentionLayout | None:
    """Query, key, value and output linear layers in one module, with a head size field."""
    core, children = _core(module), _linears(module)
    output = _role(children, "output")
    if core is None or output is None:
        return None
    roles, heads, kv_heads, size = core
    if children[output].in_features != heads * size:
        return None
    gates, norms = _widths(module, heads * size, [*roles.values(), output])
    return _layout(
        prefix,
        module,
        prefix.rstrip("."),
        heads=heads,
        kv_heads=kv_heads,
        head_dim=size,
        names={
            **roles,
            "output": output,
            "gates": tuple(g for g in gates if g != output),
            "norms": tuple(norms),
        },
    )


def output_beside(prefix: str, module: nn.Module) -> AttentionLayout | None:
    """BERT's layout: a child with query/key/value and a head size; the output layer beside it."""
    for name, child in module.named_children():
        core = _core(child)
        if core is None or _role(_linears(child), "output"):
            continue
        roles, heads, kv_heads, size = core
        outputs = [
            n
            for n, m in module.named_modules()
            if isinstance(m, nn.Linear)
            and m.in_features == heads * size
            and n.split(".")[0] != name
        ]
        if len(outputs) != 1:
            return None
        return _layout(
            prefix,
            child,
            f"{prefix}{name}",
            heads=heads,
            kv_heads=kv_heads,
            head_dim=size,
            names={**{r: f"{name}.{n}" for r, n in roles.items()}, "output": outputs[0]},
        )
    return None


def fused_projection(prefix: str, module: nn.Module) -> AttentionLayout | None:
    """One linear layer making queries, keys and values ``[Q | K | V]``, one reading the heads."""
    if _int_field(module, HEAD_COUNT_FIELDS) is None:
        return None
    children = _linears(module)
    for out_name, out in children.items():
        width = out.in_features
        fused = [n for n, c in children.items() if c.out_features == 3 * width and n != out_name]
        size = _head_size(module, width)
        if len(fused) != 1 or size is None:
            continue
        gates, norms = _widths(module, width, [fused[0], out_name])
        heads = width // size
        return _layout(
            prefix,
            module,
            prefix.rstrip("."),
            heads=heads,
            kv_heads=heads,
            head_dim=size,
            names={
                "query": fused[0],
                "key": fused[0],
                "value": fused[0],
                "output": out_name,
                "gates": tuple(gates),
                "norms": tuple(norms),
            },
        )
    return None


def multihead_attention(prefix: str, module: nn.Module) -> AttentionLayout | None:
    """``nn.MultiheadAttention``: ``in_proj_weight`` (or ``q/k/v_proj_weight``) and ``out_proj``."""
    if not isinstance(module, nn.MultiheadAttention):
        return None
    if module._qkv_same_embed_dim:  # noqa: SLF001 - the module's own switch between its two layouts
        query = key = value = f"{prefix}in_proj_weight"
    else:
        query, key, value = (f"{prefix}{r}_proj_weight" for r in "qkv")
    return AttentionLayout(
        query=query,
        key=key,
        value=value,
        output=f"{prefix}out_proj",
        heads=module.num_heads,
        kv_heads=module.num_heads,
        head_dim=module.head_dim,
        block=prefix.rstrip("."),
        head_count_fields=("num_heads",),
    )


def _is_free(module: nn.Module) -> bool:
    return not any(True for _ in module.parameters())


def _up_down(a: nn.Linear, b: nn.Linear) -> bool:
    return a.out_features == b.in_features and a.in_features == b.out_features


def sequential_feed_forward(prefix: str, module: nn.Module) -> FeedForwardLayout | None:
    """A ``Sequential`` with linear (up), parameter-free modules, linear (down)."""
    if not isinstance(module, nn.Sequential):
        return None
    items = list(module.named_children())
    for i, (up_name, up) in enumerate(items):
        if not isinstance(up, nn.Linear):
            continue
        for down_name, down in items[i + 1 :]:
            if isinstance(down, nn.Linear):
                if _up_down(up, down):
                    return FeedForwardLayout(up=f"{prefix}{up_name}", down=f"{prefix}{down_name}")
                break
            if not _is_free(down):
                break
    return None


def module_feed_forward(prefix: str, module: nn.Module) -> FeedForwardLayout | None:
    """A module whose linear children are up and down, or gate, up and down (same shapes)."""
    if isinstance(module, nn.Sequential):
        return None
    children = list(_linears(module).items())
    if len(children) == 2 and _up_down(children[0][1], children[1][1]):
        (up, a), (down, _) = children
        gates: tuple[str, ...] = ()
    elif (
        len(children) == 3
        and children[0][1].weight.shape == children[1][1].weight.shape
        and _up_down(children[1][1], children[2][1])
    ):
        (gate, _), (up, a), (down, _) = children
        gates = (f"{prefix}{gate}",)
    else:
        return None
    skip = [name for name, _ in children]
    extra, norms = _widths(module, a.out_features, skip)
    if extra or any(
        not _is_free(c)
        for n, c in module.named_children()
        if n not in skip + norms
        and any(p.shape and p.shape[0] == a.out_features for p in c.parameters())
    ):
        return None
    return FeedForwardLayout(
        up=f"{prefix}{up}",
        down=f"{prefix}{down}",
        gates=gates,
        norms=tuple(f"{prefix}{n}" for n in norms),
    )


def bert_feed_forward(prefix: str, module: nn.Module) -> FeedForwardLayout | None:
    """BERT's feed-forward block: ``intermediate.dense`` feeding ``output.dense``."""
    up, down = _child(module, "intermediate.dense"), _child(module, "output.dense")
    if isinstance(up, nn.Linear) and isinstance(down, nn.Linear) and _up_down(up, down):
        return FeedForwardLayout(up=f"{prefix}intermediate.dense", down=f"{prefix}output.dense")
    return None


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
        for name in _layer_names(layout):
            if name.rpartition(".")[0 if name.endswith("_weight") else 2] not in names and (
                name not in names
            ):
                raise PruningError(
                    f"The declared layout names layer '{name:.200}', which the model does not have."
                )
    object.__setattr__(model, LAYOUTS_ATTRIBUTE, (attention, feed_forward))
    return model


def _layer_names(layout: AttentionLayout | FeedForwardLayout) -> tuple[str, ...]:
    if isinstance(layout, AttentionLayout):
        return (*layout.projections, layout.output, *layout.norms)
    return (layout.up, layout.down, *layout.gates, *layout.norms)


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
        name for layout in (*declared_attention, *declared_ffn) for name in _layer_names(layout)
    }
    for name, module in model.named_modules():
        prefix = f"{name}." if name else ""
        for detect in ATTENTION_DETECTORS:
            layout = detect(prefix, module)
            if layout is not None and not taken & set(_layer_names(layout)):
                attention[layout.unit] = layout
                taken.update(_layer_names(layout))
                break
    for name, module in model.named_modules():
        prefix = f"{name}." if name else ""
        for detect in FEED_FORWARD_DETECTORS:
            found = detect(prefix, module)
            if found is not None and not taken & set(_layer_names(found)):
                feed_forward[found.up] = found
                taken.update(_layer_names(found))
                break
    return attention, feed_forward
