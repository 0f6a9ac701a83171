"""``nn.MultiheadAttention`` with fewer heads than its embedding width holds.

PyTorch's multi-head attention derives the head size from its embedding width
(``embed_dim // num_heads``), so removing heads from its ``in_proj_weight``
alone breaks it. :class:`HeadPrunedMultiheadAttention` is the same module (its
parameters, names and call signature unchanged) whose forward pass computes
with ``num_heads * head_dim`` attention features and maps them back to
``embed_dim`` through ``out_proj``. A pruned ``nn.MultiheadAttention`` becomes
one in place (:func:`as_head_pruned`), so a model's state dict keeps its keys.

Example:
    >>> import torch
    >>> attention = torch.nn.MultiheadAttention(8, 4, batch_first=True).eval()
    >>> x = torch.randn(2, 3, 8)
    >>> before = attention(x, x, x)[0]
    >>> after = as_head_pruned(attention)(x, x, x)[0]
    >>> bool(torch.allclose(before, after, atol=1e-6))
    True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _project(attention: nn.MultiheadAttention, x: Tensor, part: int) -> Tensor:
    """Queries (0), keys (1) or values (2) of ``x``: (length, batch, heads * head_dim)."""
    width = attention.num_heads * attention.head_dim
    rows = slice(part * width, (part + 1) * width)
    if attention.in_proj_weight is not None:
        weight = attention.in_proj_weight[rows]
    else:
        weight = (attention.q_proj_weight, attention.k_proj_weight, attention.v_proj_weight)[part]
    bias = attention.in_proj_bias[rows] if attention.in_proj_bias is not None else None
    return F.linear(x, weight, bias)


def _heads(x: Tensor, heads: int, head_dim: int) -> Tensor:
    """(length, batch, heads * head_dim) -> (batch, heads, length, head_dim)."""
    length, batch, _ = x.shape
    return x.reshape(length, batch, heads, head_dim).permute(1, 2, 0, 3)


class HeadPrunedMultiheadAttention(nn.MultiheadAttention):
    """Multi-head attention whose heads are ``num_heads`` of ``head_dim`` features (see module doc)."""

    def forward(  # noqa: PLR0913 - nn.MultiheadAttention's own signature
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        key_padding_mask: Tensor | None = None,
        need_weights: bool = True,
        attn_mask: Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        batched = query.dim() == 3
        if not batched:
            query, key, value = (t.unsqueeze(1) for t in (query, key, value))
        elif self.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        q, k, v = (_project(self, t, i) for i, t in enumerate((query, key, value)))
        if self.bias_k is not None:
            k = torch.cat([k, self.bias_k.expand(1, k.shape[1], -1)])
            v = torch.cat([v, self.bias_v.expand(1, v.shape[1], -1)])
            key_padding_mask = _pad(key_padding_mask)
            attn_mask = _pad(attn_mask)
        q, k, v = (_heads(t, self.num_heads, self.head_dim) for t in (q, k, v))
        mask = _mask(attn_mask, key_padding_mask, q)
        if is_causal and mask is None:
            length, source = q.shape[-2], k.shape[-2]
            mask = torch.ones(length, source, dtype=torch.bool, device=q.device).tril()
            mask = torch.zeros(length, source, dtype=q.dtype, device=q.device).masked_fill(
                ~mask, float("-inf")
            )
        dropout = self.dropout if self.training else 0.0
        scores = q @ k.transpose(-1, -2) * self.head_dim**-0.5
        if mask is not None:
            scores = scores + mask
        weights = F.dropout(scores.softmax(-1), dropout, self.training)
        out = (weights @ v).permute(2, 0, 1, 3).flatten(2)  # (length, batch, width)
        out = self.out_proj(out)
        if not batched:
            out = out.squeeze(1)
        elif self.batch_first:
            out = out.transpose(0, 1)
        if not need_weights:
            return out, None
        if average_attn_weights:
            weights = weights.mean(1)
        return out, weights if batched else weights.squeeze(0)


def _pad(mask: Tensor | None) -> Tensor | None:
    """A mask with one more key position (for ``bias_k``/``bias_v``)."""
    return None if mask is None else F.pad(mask, (0, 1))


def _mask(attn_mask: Tensor | None, key_padding_mask: Tensor | None, q: Tensor) -> Tensor | None:
    """Both masks as one additive float mask broadcastable to (batch, heads, length, source)."""

    def additive(mask: Tensor) -> Tensor:
        if mask.dtype == torch.bool:
            return torch.zeros_like(mask, dtype=q.dtype).masked_fill(mask, float("-inf"))
        return mask.to(q.dtype)

    mask = None
    if attn_mask is not None:
        mask = additive(attn_mask)
        if mask.dim() == 3:  # (batch * heads, length, source)
            mask = mask.view(q.shape[0], q.shape[1], *mask.shape[1:])
    if key_padding_mask is not None:
        padding = additive(key_padding_mask)[:, None, None, :]
        mask = padding if mask is None else mask + padding
    return mask


def as_head_pruned(attention: nn.MultiheadAttention) -> HeadPrunedMultiheadAttention:
    """``attention`` itself, its class switched to :class:`HeadPrunedMultiheadAttention`.

    Its ``_qkv_same_embed_dim`` is cleared: that is the switch with which
    ``nn.TransformerEncoderLayer`` leaves its fused fast path (which assumes
    ``embed_dim // num_heads`` features per head) for the module's own forward.
    """
    if not isinstance(attention, HeadPrunedMultiheadAttention):
        attention.__class__ = HeadPrunedMultiheadAttention
    attention._qkv_same_embed_dim = False  # noqa: SLF001 - see the docstring
    return attention
