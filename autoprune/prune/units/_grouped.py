"""Grouped convolutions (RegNet, ResNeXt): channels go in whole offsets, the same in every block.

A convolution with ``groups`` G > 1 (not depthwise) splits its channels into G
equal blocks; every block must keep as many channels as the others, and the
layers that feed or read it must agree on which. So such a dependency group
removes *offsets*: channel o of every block together.
"""

from __future__ import annotations

import torch
from torch import nn


def grouped_blocks(module: nn.Module) -> int:
    """The ``groups`` of a grouped convolution that is not depthwise; 1 for anything else."""
    groups = getattr(module, "groups", 1)
    if not isinstance(module, nn.modules.conv._ConvNd) or groups <= 1:
        return 1
    return 1 if module.in_channels == groups == module.out_channels else groups


def whole_offsets(indices: list[int], blocks: int, channels: int) -> list[int]:
    """``indices`` turned into whole offsets of ``blocks`` equal blocks (most named first).

    Example:
        >>> whole_offsets([1, 5, 0, 2], blocks=2, channels=8)  # offset 1 in both blocks
        [1, 5, 0, 4]
    """
    width = channels // blocks
    votes: dict[int, int] = {}
    for i in indices:
        votes[i % width] = votes.get(i % width, 0) + 1
    ranked = sorted(votes, key=lambda o: -votes[o])  # stable: ties keep the callers' order
    offsets = ranked[: min(len(indices) // blocks, width - 1)]
    return [o + b * width for o in offsets for b in range(blocks)]


def same_in_every_block(scores: torch.Tensor, blocks: int) -> torch.Tensor:
    """One score per offset (summed over the blocks), repeated in every block: offsets go together.

    Example:
        >>> same_in_every_block(torch.tensor([1.0, 2.0, 3.0, 5.0]), 2).tolist()
        [4.0, 7.0, 4.0, 7.0]
    """
    return scores if blocks <= 1 else scores.view(blocks, -1).sum(0).repeat(blocks)
