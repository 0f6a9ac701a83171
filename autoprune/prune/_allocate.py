"""How many units (weights or channels) each layer loses.

Local scope is arithmetic. Global scope ranks every unit of every layer on one
scale and removes the lowest ones, subject to a per-layer cap (so no layer is
emptied); a layer that hits its cap passes the rest of its share to the others.

Example:
    >>> import torch
    >>> scores = {"a": torch.tensor([1., 2., 3., 4.]), "b": torch.tensor([0.5, 0.6, 9., 9.])}
    >>> global_counts(scores, total=4, caps={"a": 3, "b": 1})
    {'a': 3, 'b': 1}
"""

from __future__ import annotations

import torch

from autoprune.errors import PruningError


def global_counts(
    scores: dict[str, torch.Tensor], *, total: int, caps: dict[str, int]
) -> dict[str, int]:
    """Units to remove per layer: the ``total`` lowest scores overall, no layer above its cap."""
    names = list(scores)
    capacity = sum(caps[n] for n in names)
    if total > capacity:
        raise PruningError(
            f"Cannot remove {total} units: the per-layer caps allow at most {capacity} "
            f"({', '.join(f'{n}: {caps[n]}' for n in names)})."
        )
    if total <= 0:
        return {n: 0 for n in names}
    flat = torch.cat([scores[n].detach().flatten().double().cpu() for n in names])
    owner = torch.cat(
        [torch.full((scores[n].numel(),), i, dtype=torch.long) for i, n in enumerate(names)]
    )
    order = torch.sort(flat, stable=True).indices
    owner_sorted = owner[order]
    cap_tensor = torch.tensor([caps[n] for n in names], dtype=torch.long)

    def removed(k: int) -> torch.Tensor:
        counts = torch.bincount(owner_sorted[:k], minlength=len(names))
        return torch.minimum(counts, cap_tensor)

    low, high = 0, flat.numel()
    while low < high:  # smallest k whose capped removal reaches the total
        mid = (low + high) // 2
        if int(removed(mid).sum()) >= total:
            high = mid
        else:
            low = mid + 1
    counts = removed(low)  # removal grows by at most one unit per step of k: exactly ``total``
    return {n: int(c) for n, c in zip(names, counts, strict=True)}


def local_count(n_units: int, amount: float, *, min_kept: int = 1) -> int:
    """Units to remove for a fraction ``amount`` of ``n_units``, keeping at least ``min_kept``."""
    return max(0, min(round(amount * n_units), n_units - min_kept))


def cap_count(n_units: int, max_amount: float | None, *, min_kept: int = 1) -> int:
    """The most units a layer may lose in a global ranking."""
    limit = n_units if max_amount is None else int(max_amount * n_units)
    return max(0, min(limit, n_units - min_kept))


def channels_to_remove(
    n_channels: int, ratio: float, *, min_kept: int = 1, round_to: int | None = None
) -> int:
    """Channels a structured ``ratio`` removes, keeping ``min_kept`` and rounding kept channels to ``round_to``.

    Example:
        >>> channels_to_remove(32, 0.3), channels_to_remove(32, 0.3, round_to=8)
        (10, 8)
    """
    removed = local_count(n_channels, ratio, min_kept=min_kept)
    if not round_to:
        return removed
    kept = max(round_to, int(round((n_channels - removed) / round_to)) * round_to)
    return max(0, n_channels - min(kept, n_channels))
