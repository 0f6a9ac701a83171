"""Data plumbing: turn what a user hands us into batches, split it, subsample it.

A split is either a pair of tensors ``(X, y)`` or any ``torch.utils.data.Dataset``
whose items are ``(input, target)`` pairs. Tensor pairs take a fast path (no
DataLoader), which matters on a 2-core machine.

Example:
    >>> import torch
    >>> data = as_dataset((torch.zeros(10, 3), torch.zeros(10, dtype=torch.long)), "train_data")
    >>> sum(len(x) for x, _ in iterate_batches(data, batch_size=4))
    10
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

from autoprune._validation import shorten
from autoprune.errors import TaskError


def as_dataset(data, field: str) -> Dataset:
    """Return ``data`` as a Dataset; ``field`` names it in errors."""
    if isinstance(data, Dataset):
        return data
    if isinstance(data, (tuple, list)) and len(data) == 2:
        inputs, targets = data
        if not (isinstance(inputs, torch.Tensor) and isinstance(targets, torch.Tensor)):
            raise TaskError(
                f"The '{field}' field must hold two tensors (inputs, targets). "
                f"Got ({type(inputs).__name__}, {type(targets).__name__}) instead."
            )
        if len(inputs) != len(targets):
            raise TaskError(
                f"The '{field}' field has {len(inputs)} inputs but {len(targets)} targets; "
                "they must have the same length."
            )
        if len(inputs) == 0:
            raise TaskError(f"The '{field}' field is empty.")
        return TensorDataset(inputs, targets)
    raise TaskError(
        f"The '{field}' field must be a pair of tensors (X, y) or a torch Dataset. "
        f"Got {type(data).__name__} instead."
    )


def _tensors_of(data: Dataset) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The two tensors behind a TensorDataset (or a Subset of one), else None."""
    if isinstance(data, TensorDataset) and len(data.tensors) == 2:
        return data.tensors[0], data.tensors[1]
    if isinstance(data, Subset):
        inner = _tensors_of(data.dataset)
        if inner is not None:
            index = torch.as_tensor(data.indices, dtype=torch.long)
            return inner[0][index], inner[1][index]
    return None


def iterate_batches(
    data: Dataset,
    *,
    batch_size: int,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(inputs, targets)`` batches; shuffled with ``generator`` when asked."""
    tensors = _tensors_of(data)
    if tensors is None:
        loader = DataLoader(data, batch_size=batch_size, shuffle=shuffle, generator=generator)
        yield from loader
        return
    inputs, targets = tensors
    n = len(inputs)
    order = torch.randperm(n, generator=generator) if shuffle else None
    for start in range(0, n, batch_size):
        if order is None:
            yield inputs[start : start + batch_size], targets[start : start + batch_size]
        else:
            index = order[start : start + batch_size]
            yield inputs[index], targets[index]


def split_off(data: Dataset, n_holdout: int, *, seed: int) -> tuple[Dataset, Dataset]:
    """Split ``data`` into (rest, holdout of ``n_holdout`` items), seeded.

    Example:
        >>> import torch
        >>> d = as_dataset((torch.arange(10.0)[:, None], torch.arange(10)), "x")
        >>> rest, hold = split_off(d, 3, seed=0)
        >>> len(rest), len(hold)
        (7, 3)
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64:
        raise TaskError(
            f"A split seed must be an integer in [0, 2**64). Got {shorten(seed)} instead."
        )
    n = len(data)
    if not 0 < n_holdout < n:
        raise TaskError(f"Cannot hold out {n_holdout} of {n} items: need 0 < holdout < {n}.")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    holdout, rest = sorted(order[:n_holdout]), sorted(order[n_holdout:])
    return _subset(data, rest), _subset(data, holdout)


def take(data: Dataset, n: int | None, *, seed: int = 0) -> Dataset:
    """A seeded random subset of ``n`` items (all of ``data`` when n is None or larger)."""
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise TaskError(f"A subset size must be a whole number >= 1. Got {shorten(n)} instead.")
    if n is None or n >= len(data):
        return data
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
    return _subset(data, sorted(order[:n].tolist()))


def _subset(data: Dataset, indices: list[int]) -> Dataset:
    tensors = _tensors_of(data)
    if tensors is not None:
        index = torch.as_tensor(indices, dtype=torch.long)
        return TensorDataset(tensors[0][index], tensors[1][index])
    return Subset(data, indices)


def dataset_digest(data: Dataset, *, max_items: int = 256) -> str:
    """A short content hash of a split, for cache keys.

    Tensor-backed splits are hashed in full (a 60k-image split takes about 0.1 s);
    other Datasets by their size and ``max_items`` items spread over them, since
    reading every item of a lazy Dataset can take minutes.
    """
    import hashlib

    h = hashlib.sha256(str(len(data)).encode())
    tensors = _tensors_of(data)
    if tensors is not None:
        for t in tensors:
            h.update(str((tuple(t.shape), str(t.dtype))).encode())
            h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().data)
    else:
        step = max(1, len(data) // max_items)
        for i in range(0, len(data), step):
            x, y = data[i]
            h.update(torch.as_tensor(x).cpu().numpy().tobytes())
            h.update(torch.as_tensor(y).cpu().numpy().tobytes())
    return h.hexdigest()[:16]
