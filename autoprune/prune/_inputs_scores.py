"""Which input features to keep: feature names checked, features scored, the kept indices.

Example:
    >>> import torch
    >>> from torch import nn
    >>> layer = nn.Linear(3, 2)
    >>> with torch.no_grad(): _ = layer.weight.copy_(torch.tensor([[3., 0, 4], [0, 1, 0]]))
    >>> scores = input_scores(layer, "l2", None)
    >>> scores.tolist(), kept_indices(2, scores), kept_indices([2, 0], scores)
    ([3.0, 1.0, 4.0], [0, 2], [0, 2])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from autoprune._echo import shorten
from autoprune.errors import ParameterError


def check_names(names: Sequence[str] | None, n: int) -> tuple[str, ...]:
    """``names`` as a tuple of ``n`` strings (empty when none are given)."""
    if names is None or (isinstance(names, (list, tuple)) and not names):
        return ()
    if (
        not isinstance(names, (list, tuple))
        or len(names) != n
        or not all(isinstance(x, str) for x in names)
    ):
        raise ParameterError(
            f"The 'feature_names' parameter must be {n} strings, one per input feature. "
            f"Got {shorten(names)} instead."
        )
    return tuple(names)


def input_scores(layer: nn.Linear, criterion: str, data) -> torch.Tensor:
    """One score per input feature: its weight column's L2 norm, times mean |x_j| for "activation"."""
    norms = layer.weight.detach().double().norm(dim=0).cpu()
    if criterion == "l2":
        return norms
    if data is None:
        raise ParameterError(
            "The 'data' parameter must be calibration inputs (N, n_features), an (X, y) pair or "
            "a Dataset when criterion='activation'. Got None instead."
        )
    return mean_abs(data, layer.in_features) * norms


def mean_abs(data, n: int) -> torch.Tensor:
    """The mean absolute value of each of the ``n`` input features over ``data``."""
    from autoprune.tasks._data import as_dataset, iterate_batches

    if isinstance(data, torch.Tensor):
        data = (data, torch.zeros(len(data)))
    total, count = torch.zeros(n, dtype=torch.float64), 0
    for inputs, _ in iterate_batches(as_dataset(data, "data"), batch_size=256):
        inputs = torch.as_tensor(inputs)
        if inputs.dim() != 2 or inputs.shape[1] != n:
            raise ParameterError(
                f"The 'data' parameter must hold inputs of shape (N, {n}). "
                f"Got a batch of shape {tuple(inputs.shape)} instead."
            )
        total += inputs.detach().double().abs().sum(0).cpu()
        count += len(inputs)
    return total / max(count, 1)


def kept_indices(keep, scores: torch.Tensor) -> list[int]:
    """The kept feature indices, ascending: the ``keep`` best by score, or the indices given."""
    n = len(scores)
    expected = (
        f"an integer in [1, {n}] (the number of input features to keep) or a list of "
        f"distinct feature indices in [0, {n})"
    )
    if isinstance(keep, int) and not isinstance(keep, bool):
        if not 1 <= keep <= n:
            raise _keep_error(expected, keep)
        order = sorted(range(n), key=lambda i: (-float(scores[i]), i))
        return sorted(order[:keep])
    if isinstance(keep, (list, tuple, range)) and keep:
        indices = list(keep)
        if all(
            isinstance(i, int) and not isinstance(i, bool) and 0 <= i < n for i in indices
        ) and len(set(indices)) == len(indices):
            return sorted(indices)
    raise _keep_error(expected, keep)


def _keep_error(expected: str, keep) -> ParameterError:
    return ParameterError(f"The 'keep' parameter must be {expected}. Got {shorten(keep)} instead.")
