"""Structured pruning of transformer blocks: whole attention heads and feed-forward neurons.

Blocks in the BERT layout are found by shape, not by class: an attention block
has ``self.query/key/value`` linear layers with an ``attention_head_size`` and
an ``output.dense`` projection; a feed-forward block has ``intermediate.dense``
feeding ``output.dense``. A unit is all the heads of one attention block
(named after its query layer) or all the neurons of one feed-forward block
(named after its intermediate layer). Removing heads slices whole heads out of
the query, key and value projections and the matching input columns of the
output projection, and updates the block's head count; the attention reshapes
by head size, so the model keeps running. The history (unit, kind, original
indices) replays the same removal on a fresh model.

Example:
    >>> # units = TransformerUnits(model); units.remove("bert.encoder.layer.0.attention.self.query", [3, 7])
"""

from __future__ import annotations

from torch import nn

from autoprune.errors import PruningError


def find_blocks(model: nn.Module) -> tuple[dict, dict]:
    """(attention blocks, feed-forward blocks) by module name."""
    attention, feed_forward = {}, {}
    for name, module in model.named_modules():
        prefix = f"{name}." if name else ""
        attn, out = getattr(module, "self", None), getattr(module, "output", None)
        dense = getattr(out, "dense", None) if out is not None else None
        if (
            isinstance(attn, nn.Module)
            and isinstance(dense, nn.Linear)
            and hasattr(attn, "attention_head_size")
            and all(
                isinstance(getattr(attn, p, None), nn.Linear) for p in ("query", "key", "value")
            )
        ):
            attention[f"{prefix}self.query"] = (
                attn,
                dense,
                f"{prefix}self",
                f"{prefix}output.dense",
            )
        inter = getattr(module, "intermediate", None)
        up = getattr(inter, "dense", None) if inter is not None else None
        if (
            isinstance(up, nn.Linear)
            and isinstance(dense, nn.Linear)
            and up.out_features == dense.in_features
        ):
            feed_forward[f"{prefix}intermediate.dense"] = (up, dense, f"{prefix}output.dense")
    return attention, feed_forward


def _keep_rows(layer: nn.Linear, keep) -> None:
    layer.weight = nn.Parameter(layer.weight.data[keep].clone())
    if layer.bias is not None:
        layer.bias = nn.Parameter(layer.bias.data[keep].clone())
    layer.out_features = len(keep)


def _keep_columns(layer: nn.Linear, keep) -> None:
    layer.weight = nn.Parameter(layer.weight.data[:, keep].clone())
    layer.in_features = len(keep)


class TransformerUnits:
    """Attention heads and feed-forward neurons as structured units (the interface of ChannelPruner)."""

    def __init__(self, model: nn.Module, example_input=None) -> None:
        from autoprune.prune._structured import StructuredGroup

        self.model = model
        self._attention, self._ffn = find_blocks(model)
        self.groups: dict[str, StructuredGroup] = {}
        self._layer_group: dict[str, str] = {}
        for unit, (attn, _dense, attn_name, dense_name) in self._attention.items():
            size = int(attn.attention_head_size)
            outs = tuple(f"{attn_name}.{p}" for p in ("query", "key", "value"))
            self.groups[unit] = StructuredGroup(
                unit, outs, (dense_name,), (size,), (), unit_size=size
            )
            self._layer_group.update({layer: unit for layer in outs})
        for unit, (_up, _down, down_name) in self._ffn.items():
            self.groups[unit] = StructuredGroup(unit, (unit,), (down_name,), (1,), ())
            self._layer_group[unit] = unit
        order = {name: i for i, (name, _) in enumerate(model.named_modules())}
        self.groups = dict(sorted(self.groups.items(), key=lambda kv: order.get(kv[0], 0)))
        self.original_channels = {unit: self.channels(unit) for unit in self.groups}
        self._kept = {unit: list(range(n)) for unit, n in self.original_channels.items()}
        self._modules = dict(model.named_modules())

    def group_of(self, layer: str) -> str:
        if layer in self._layer_group:
            return self._layer_group[layer]
        raise PruningError(
            f"Layer '{layer}' cannot be pruned structurally on its own. In a transformer block, name the query "
            "layer to remove attention heads, or the intermediate layer to remove feed-forward neurons."
        )

    def channels(self, unit: str) -> int:
        """Current heads of an attention unit, or neurons of a feed-forward unit."""
        if unit in self._attention:
            attn = self._attention[unit][0]
            return attn.query.out_features // int(attn.attention_head_size)
        return self._ffn[unit][0].out_features

    def channel_scores(self, unit: str, criterion, stats):
        """One score per head or neuron: the criterion summed over every weight that goes with it."""
        group = self.groups[unit]
        n, size = self.channels(unit), group.unit_size
        total = 0
        for name in group.out_layers:
            scores = (
                criterion.weight_scores(self._modules[name], stats.get(name, {})).double().cpu()
            )
            total = total + scores.reshape(n, -1).sum(1)
        for name in group.in_layers:
            scores = (
                criterion.weight_scores(self._modules[name], stats.get(name, {})).double().cpu()
            )
            total = total + scores.reshape(scores.shape[0], n, size).sum((0, 2))
        return total

    def remove(self, unit: str, indices) -> None:
        """Remove heads (or neurons) ``indices`` (current numbering) of ``unit``, physically."""
        indices = sorted({int(i) for i in indices})
        if not indices:
            return
        n = self.channels(unit)
        if len(indices) >= n:
            raise PruningError(f"Cannot remove all {n} heads or neurons of unit '{unit}'.")
        self._cut(unit, indices)
        self._kept[unit] = [k for i, k in enumerate(self._kept[unit]) if i not in set(indices)]

    def _cut(self, unit: str, indices: list[int]) -> None:
        drop = set(indices)
        if unit in self._attention:
            attn, dense, _, _ = self._attention[unit]
            size = int(attn.attention_head_size)
            keep = [
                h * size + j
                for h in range(self.channels(unit))
                if h not in drop
                for j in range(size)
            ]
            for projection in (attn.query, attn.key, attn.value):
                _keep_rows(projection, keep)
            _keep_columns(dense, keep)
            attn.num_attention_heads = len(keep) // size
            attn.all_head_size = len(keep)
            return
        up, down, _ = self._ffn[unit]
        keep = [i for i in range(up.out_features) if i not in drop]
        _keep_rows(up, keep)
        _keep_columns(down, keep)

    def replay(self, history: list) -> None:
        """Apply a recorded history (bitmasks or lists of original indices) to this model."""
        from autoprune.prune._structured import decode_removed

        for unit, _kind, original in history:
            if unit not in self.groups:
                raise PruningError(
                    f"The pruning history names unit '{unit}', which this model does not have."
                )
            positions = [self._kept[unit].index(i) for i in decode_removed(original)]
            self.remove(unit, positions)

    @property
    def history(self) -> list:
        """``[unit, "heads" | "neurons", bitmask of removed originals]`` for every unit (fixed size)."""
        from autoprune.prune._structured import encode_removed

        return [
            [
                unit,
                "heads" if unit in self._attention else "neurons",
                encode_removed(set(range(n)) - set(self._kept[unit]), n),
            ]
            for unit, n in self.original_channels.items()
        ]


def has_transformer_blocks(model: nn.Module) -> bool:
    attention, feed_forward = find_blocks(model)
    return bool(attention or feed_forward)
