"""A model that cannot be traced whole is pruned by the channels inside its blocks."""

from __future__ import annotations

import torch
from torch import nn

from autoprune.prune.units import replay_history, structured_units


def _shuffle(x):
    b, c, h, w = x.shape
    return x.view(b, 2, c // 2, h, w).transpose(1, 2).reshape(b, c, h, w)


def _branch(c: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c, c, 1), nn.BatchNorm2d(c), nn.ReLU(),
        nn.Conv2d(c, c, 3, stride, 1, groups=c), nn.BatchNorm2d(c),
        nn.Conv2d(c, c, 1), nn.BatchNorm2d(c), nn.ReLU(),
    )  # fmt: skip


class Down(nn.Module):
    """ShuffleNet V2's downsampling unit: a depthwise branch on its input beside a full branch."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.branch1 = nn.Sequential(
            nn.Conv2d(c, c, 3, 2, 1, groups=c), nn.BatchNorm2d(c), nn.Conv2d(c, c, 1), nn.ReLU()
        )
        self.branch2 = _branch(c, stride=2)

    def forward(self, x):
        return _shuffle(torch.cat([self.branch1(x), self.branch2(x)], 1))


class Unit(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.branch2 = _branch(c // 2)

    def forward(self, x):
        x1, x2 = x.chunk(2, 1)
        return _shuffle(torch.cat([x1, self.branch2(x2)], 1))


def _model():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, 1, 1), nn.MaxPool2d(2), Down(8), Unit(16), Unit(16),
        nn.Conv2d(16, 32, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 4),
    ).eval()  # fmt: skip


X = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))


def test_a_channel_shuffle_model_is_pruned_block_by_block_and_replays():
    model = _model()
    units = structured_units(model, X[:1])
    assert type(units).__name__ == "BlockChannelUnits"
    assert list(units.groups) == ["2.branch2.0", "3.branch2.0", "4.branch2.0"]
    assert units.notes[0].startswith("The model cannot be traced whole")
    assert "'2.branch1.0'" in units.notes[1] and "tied to the block's inputs" in units.notes[1]
    for group in units.groups:
        units.remove(group, range(units.channels(group) // 2))
    assert model[3].branch2[3].groups == 4 and model[3].branch2[5].in_channels == 4
    with torch.no_grad():
        out = model(X)
    fresh = replay_history(_model(), X[:1], units.history)
    fresh.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert torch.equal(fresh(X), out)
