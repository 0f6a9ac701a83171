"""Detectors of attention blocks: ``(prefix, module) -> AttentionLayout | None``.

A detector reads the module's own fields (head size, head counts) and the
shapes of its linear layers; the names of the projections only tell the query
from the key. Separate projections (BERT's ``query/key/value`` beside
``output.dense``, ``q_proj/k_proj/v_proj/o_proj`` with grouped-query
attention, ``out_proj``), a fused projection (``c_attn``, ``qkv``) and
``nn.MultiheadAttention`` are known.

Example:
    >>> from torch import nn
    >>> layout = multihead_attention("attn.", nn.MultiheadAttention(8, 2))
    >>> layout.query, layout.output, layout.heads, layout.head_dim
    ('attn.in_proj_weight', 'attn.out_proj', 2, 4)
    >>> fused_projection("", nn.Linear(4, 4)) is None
    True
"""

from __future__ import annotations

from torch import nn

from autoprune.prune.units._layout_fields import (
    int_field,
    int_fields,
    linear_children,
    role_of,
    width_children,
)
from autoprune.prune.units._layout_types import (
    HEAD_COUNT_FIELDS,
    HEAD_SIZE_FIELDS,
    KV_COUNT_FIELDS,
    WIDTH_FIELDS,
    AttentionLayout,
)


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
        head_count_fields=int_fields(block, HEAD_COUNT_FIELDS),
        kv_count_fields=int_fields(block, KV_COUNT_FIELDS),
        width_fields=int_fields(block, WIDTH_FIELDS),
    )


def _head_size(module: nn.Module, width: int) -> int | None:
    size = int_field(module, HEAD_SIZE_FIELDS)
    heads = int_field(module, HEAD_COUNT_FIELDS)
    if size is None and heads is not None and width % heads == 0:
        size = width // heads
    return size if size and width % size == 0 else None


def _core(module: nn.Module) -> tuple[dict[str, str], int, int, int] | None:
    """Query/key/value names, heads, key/value heads and head size of ``module``, if it has them."""
    children = linear_children(module)
    roles = {r: role_of(children, r) for r in ("query", "key", "value")}
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
    core, children = _core(module), linear_children(module)
    output = role_of(children, "output")
    if core is None or output is None:
        return None
    roles, heads, kv_heads, size = core
    if children[output].in_features != heads * size:
        return None
    gates, norms = width_children(module, heads * size, [*roles.values(), output])
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
        if core is None or role_of(linear_children(child), "output"):
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
    if int_field(module, HEAD_COUNT_FIELDS) is None:
        return None
    children = linear_children(module)
    for out_name, out in children.items():
        width = out.in_features
        fused = [n for n, c in children.items() if c.out_features == 3 * width and n != out_name]
        size = _head_size(module, width)
        if len(fused) != 1 or size is None:
            continue
        gates, norms = width_children(module, width, [fused[0], out_name])
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
