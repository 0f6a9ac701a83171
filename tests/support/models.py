"""Small models the tests share: a BERT-layout encoder that needs no download.

Example:
    >>> tiny_bert()(TOKENS).shape
    torch.Size([3, 5, 16])
"""

from __future__ import annotations

import torch
from torch import nn


class _Dense(nn.Module):
    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.dense = nn.Linear(n_in, n_out)


class _SelfAttention(nn.Module):
    def __init__(self, hidden: int = 16, heads: int = 4) -> None:
        super().__init__()
        self.num_attention_heads, self.attention_head_size = heads, hidden // heads
        self.all_head_size = hidden
        self.query, self.key, self.value = (nn.Linear(hidden, hidden) for _ in range(3))

    def forward(self, x):
        b, t, _ = x.shape

        def split(y):
            return y.view(b, t, self.num_attention_heads, self.attention_head_size).transpose(1, 2)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        weights = (q @ k.transpose(-1, -2) / self.attention_head_size**0.5).softmax(-1)
        return (weights @ v).transpose(1, 2).reshape(b, t, self.all_head_size)


class _Attention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.self, self.output = _SelfAttention(), _Dense(16, 16)

    def forward(self, x):
        return x + self.output.dense(self.self(x))


class _Layer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attention, self.intermediate, self.output = (
            _Attention(),
            _Dense(16, 32),
            _Dense(32, 16),
        )

    def forward(self, x):
        h = self.attention(x)
        return h + self.output.dense(torch.relu(self.intermediate.dense(h)))


class TinyBert(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.ModuleList([_Layer(), _Layer()])

    def forward(self, x):
        for layer in self.layer:
            x = layer(x)
        return x


TOKENS = torch.randn(3, 5, 16, generator=torch.Generator().manual_seed(0))


def tiny_bert(seed: int = 0) -> TinyBert:
    """A TinyBert with seeded random weights, in eval mode."""
    torch.manual_seed(seed)
    return TinyBert().eval()


def deep_resnet() -> nn.Module:
    """FashionResNet with two blocks per stage, narrow: four of its six blocks removable whole."""
    from autoprune.tasks.models import FashionResNet

    return FashionResNet(widths=(8, 8, 16), blocks=2)
