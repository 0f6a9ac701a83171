"""Physical removal of heads and neurons: which rows and columns go, and slicing them out.

Units of an attention block are its key/value heads (each with the query heads
that share it; without grouped-query attention, simply its heads). For the
current state of a block, :func:`head_rows` gives the unit each row of a
projection belongs to; :func:`cut_heads` and :func:`cut_neurons` keep the rows
(and the output layer's columns) of the units not removed.

Example:
    >>> from torch import nn
    >>> from autoprune.prune.units._layouts import AttentionLayout
    >>> block = nn.Module()
    >>> block.q, block.k, block.v = nn.Linear(4, 8), nn.Linear(4, 4), nn.Linear(4, 4)
    >>> block.o = nn.Linear(8, 4)
    >>> layout = AttentionLayout("q", "k", "v", "o", heads=4, kv_heads=2, head_dim=2, block="")
    >>> head_rows(dict(block.named_modules()), layout, "q").tolist()
    [0, 0, 0, 0, 1, 1, 1, 1]
    >>> cut_heads(dict(block.named_modules()), layout, {0})
    >>> block.q.out_features, block.k.out_features, block.o.in_features
    (4, 2, 4)
"""

from __future__ import annotations

import torch
from torch import nn

from autoprune.prune.units._layouts import AttentionLayout, FeedForwardLayout
from autoprune.prune.units._mha import as_head_pruned

Modules = dict[str, nn.Module]


def weight_of(modules: Modules, name: str) -> tuple[nn.Module, str]:
    """The module holding the weight ``name`` names, and the weight's attribute name."""
    if name in modules:
        return modules[name], "weight"
    owner, _, attribute = name.rpartition(".")
    return modules[owner], attribute


def weight(modules: Modules, name: str) -> torch.Tensor:
    module, attribute = weight_of(modules, name)
    return getattr(module, attribute)


def kv_heads_now(modules: Modules, layout: AttentionLayout) -> int:
    """Key/value heads ``layout``'s block has now (its units)."""
    rows = weight(modules, layout.key).shape[0]
    per_unit = layout.head_dim * (layout.group_size + 2 if layout.fused else 1)
    return rows // per_unit


def head_rows(modules: Modules, layout: AttentionLayout, name: str) -> torch.Tensor:
    """The unit of each row (output feature) of projection ``name``, as it is now."""
    units, size, group = kv_heads_now(modules, layout), layout.head_dim, layout.group_size
    query = torch.arange(units * group * size) // (group * size)
    kv = torch.arange(units * size) // size
    if name == layout.query and layout.fused:
        return torch.cat([query, kv, kv])
    if name in (layout.key, layout.value):
        return kv
    return query  # the query projection and the gates


def _keep(units: torch.Tensor, drop: set[int]) -> torch.Tensor:
    return torch.tensor(
        [i for i, u in enumerate(units.tolist()) if u not in drop], dtype=torch.long
    )


def _slice(module: nn.Module, attribute: str, keep: torch.Tensor, dim: int) -> None:
    """Keep entries ``keep`` of parameter ``attribute`` along ``dim`` (and the module's sizes)."""
    tensor = getattr(module, attribute)
    if tensor is None:
        return
    kept = tensor.data.index_select(dim, keep).clone()
    setattr(module, attribute, nn.Parameter(kept, requires_grad=tensor.requires_grad))
    if isinstance(module, nn.Linear) and attribute == "weight":
        if dim == 0:
            module.out_features = len(keep)
        else:
            module.in_features = len(keep)


def keep_rows(modules: Modules, name: str, keep: torch.Tensor) -> None:
    """Keep output features ``keep`` of layer (or weight) ``name``, with its bias."""
    module, attribute = weight_of(modules, name)
    _slice(module, attribute, keep, 0)
    if attribute == "weight":
        _slice(module, "bias", keep, 0)


def keep_columns(modules: Modules, name: str, keep: torch.Tensor) -> None:
    """Keep input features ``keep`` of layer ``name``."""
    _slice(modules[name], "weight", keep, 1)


def keep_norm(modules: Modules, name: str, keep: torch.Tensor) -> None:
    """Keep features ``keep`` of a norm layer (every 1-D parameter and buffer)."""
    module = modules[name]
    for attribute, _ in list(module.named_parameters(recurse=False)):
        _slice(module, attribute, keep, 0)
    for attribute, tensor in list(module.named_buffers(recurse=False)):
        if tensor is not None and tensor.dim() == 1:
            setattr(module, attribute, tensor.index_select(0, keep).clone())
    if hasattr(module, "normalized_shape"):
        module.normalized_shape = (len(keep),)
    if hasattr(module, "num_features"):
        module.num_features = len(keep)


def cut_heads(modules: Modules, layout: AttentionLayout, drop: set[int]) -> None:
    """Remove units ``drop`` (current numbering) of an attention block, and update its fields."""
    block = modules[layout.block]
    if isinstance(block, nn.MultiheadAttention):
        _cut_multihead(block, layout, drop)
        return
    query = _keep(head_rows(modules, layout, layout.query)[: _query_rows(modules, layout)], drop)
    rows = {name: _keep(head_rows(modules, layout, name), drop) for name in layout.projections}
    for name, keep in rows.items():
        keep_rows(modules, name, keep)
    keep_columns(modules, layout.output, query)
    for name in layout.norms:
        keep_norm(modules, name, query)
    _set_fields(block, layout, len(query) // layout.head_dim)


def _query_rows(modules: Modules, layout: AttentionLayout) -> int:
    return kv_heads_now(modules, layout) * layout.group_size * layout.head_dim


def _set_fields(block: nn.Module, layout: AttentionLayout, heads: int) -> None:
    for field in layout.head_count_fields:
        setattr(block, field, heads)
    for field in layout.kv_count_fields:
        setattr(block, field, heads // layout.group_size)
    for field in layout.width_fields:
        setattr(block, field, heads * layout.head_dim)


def _cut_multihead(block: nn.MultiheadAttention, layout: AttentionLayout, drop: set[int]) -> None:
    """``nn.MultiheadAttention``: slice its projections, then compute with fewer heads."""
    size, heads = layout.head_dim, block.num_heads
    units = torch.arange(heads * size) // size
    keep = _keep(units, drop)
    fused = torch.cat([keep + i * heads * size for i in range(3)])
    if block.in_proj_weight is not None:
        _slice(block, "in_proj_weight", fused, 0)
    else:
        for attribute in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
            _slice(block, attribute, keep, 0)
    _slice(block, "in_proj_bias", fused, 0)
    for attribute in ("bias_k", "bias_v"):
        _slice(block, attribute, keep, 2)
    _slice(block.out_proj, "weight", keep, 1)
    block.num_heads = len(keep) // size
    as_head_pruned(block)


def cut_neurons(modules: Modules, layout: FeedForwardLayout, drop: set[int]) -> None:
    """Remove neurons ``drop`` (current numbering) of a feed-forward block."""
    up = modules[layout.up]
    keep = torch.tensor([i for i in range(up.out_features) if i not in drop], dtype=torch.long)
    for name in (layout.up, *layout.gates):
        keep_rows(modules, name, keep)
    for name in layout.norms:
        keep_norm(modules, name, keep)
    keep_columns(modules, layout.down, keep)
