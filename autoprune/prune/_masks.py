"""Unstructured and N:M masks, and keeping masked weights at exactly zero.

Pruned weights are zeroed in place, so a pruned model is always a plain module
(a mask made permanent is just that module). During fine-tuning
:class:`MaskSet` re-applies the masks after every optimizer step.

Example:
    >>> import torch
    >>> scores = torch.tensor([[4., 3., 2., 1.]])
    >>> nm_mask(scores, 2, 4, layer="fc").tolist()
    [[True, True, False, False]]
    >>> unstructured_mask(scores, 3).tolist()
    [[True, False, False, False]]
"""

from __future__ import annotations

import torch
from torch import nn

from autoprune.errors import PruningError


def unstructured_mask(scores: torch.Tensor, n_remove: int) -> torch.Tensor:
    """Keep-mask that removes the ``n_remove`` lowest scores (ties broken by position)."""
    mask = torch.ones(scores.numel(), dtype=torch.bool, device=scores.device)
    if n_remove > 0:
        order = torch.sort(scores.flatten().double(), stable=True).indices
        mask[order[:n_remove]] = False
    return mask.view_as(scores)


def nm_mask(scores: torch.Tensor, n: int, m: int, *, layer: str) -> torch.Tensor:
    """Keep the ``n`` highest of every ``m`` consecutive weights along the input dimension."""
    if not 0 < n < m:
        raise PruningError(f"Layer '{layer}': N:M sparsity needs 0 < N < M. Got {n}:{m} instead.")
    if scores.dim() < 2:
        raise PruningError(f"Layer '{layer}': N:M sparsity needs a 2-D or conv weight.")
    in_dim = scores.shape[1]
    if in_dim % m:
        raise PruningError(
            f"Layer '{layer}': N:M sparsity groups M={m} consecutive inputs, but the layer has "
            f"{in_dim} inputs, which M does not divide. Use an M that divides {in_dim}, or another granularity."
        )
    # (out, in, *k) -> (out, *k, in) so that groups run along the input dimension
    moved = scores.movedim(1, -1)
    groups = moved.reshape(-1, m)
    keep_idx = torch.topk(groups.double(), n, dim=1, sorted=False).indices
    mask = torch.zeros_like(groups, dtype=torch.bool).scatter_(1, keep_idx, True)
    return mask.view(moved.shape).movedim(-1, 1)


class MaskSet:
    """Keep-masks per layer; :meth:`apply` zeroes the masked weights in place.

    Use it as a step callback: ``train_model(..., after_step=[masks])``.
    """

    def __init__(self) -> None:
        self.masks: dict[str, tuple[nn.Module, torch.Tensor]] = {}

    def set(self, name: str, layer: nn.Module, mask: torch.Tensor) -> None:
        if mask.shape != layer.weight.shape:
            raise PruningError(
                f"Mask of layer '{name}' has shape {tuple(mask.shape)}, weight {tuple(layer.weight.shape)}."
            )
        self.masks[name] = (layer, mask.to(layer.weight.device))

    def clear(self) -> None:
        self.masks.clear()

    @torch.no_grad()
    def apply(self) -> None:
        for layer, mask in self.masks.values():
            layer.weight.mul_(mask)

    def __call__(self, model: nn.Module | None = None, step: int | None = None) -> None:
        self.apply()

    def __len__(self) -> int:
        return len(self.masks)
