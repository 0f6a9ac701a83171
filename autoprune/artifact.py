"""The weights file autoprune writes: safetensors with a compact encoding for sparse tensors.

A floating-point tensor with enough zeros is stored as a packed bitmask (one
bit per element, ``NAME.__mask__``, uint8) plus its non-zero values in order
(``NAME.__values__``); its shape goes in the file's metadata. Any other tensor
is stored as is. The encoding is chosen per tensor, only where it is smaller.
:func:`artifact_bytes` is the exact size of that file, so a size budget is a
promise about the bytes on disk. Needs only torch, numpy and safetensors.

Example:
    >>> import torch
    >>> w = torch.zeros(100, 100); w[0, :10] = 1.0
    >>> tensors, meta = encode_state_dict({"w": w})
    >>> sorted(tensors), artifact_bytes({"w": w}) < 100 * 100 * 4
    (['w.__mask__', 'w.__values__'], True)
    >>> torch.equal(decode_state_dict(tensors, meta)["w"], w)
    True
"""

from __future__ import annotations

import json
import math

import numpy as np
import torch

FORMAT = "autoprune-sparse-v1"
MASK, VALUES = ".__mask__", ".__values__"
HISTORY_KEY = "autoprune.history"  # metadata: the structured-pruning history, JSON


def sparse_bytes(numel: int, nonzero: int, element_size: int = 4) -> int:
    """Payload bytes of the bitmask + values encoding."""
    return math.ceil(numel / 8) + nonzero * element_size


def encode_state_dict(
    state: dict[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, metadata) to store; sparse float tensors become bitmask + values."""
    tensors: dict[str, torch.Tensor] = {}
    sparse: dict[str, list[int]] = {}
    for name, tensor in state.items():
        t = tensor.detach().cpu().contiguous()
        if t.is_floating_point() and t.numel() > 0:
            nonzero = int(torch.count_nonzero(t))
            if sparse_bytes(t.numel(), nonzero, t.element_size()) < t.numel() * t.element_size():
                keep = (t != 0).flatten()
                tensors[name + MASK] = torch.from_numpy(np.packbits(keep.numpy()))
                tensors[name + VALUES] = t.flatten()[keep].clone()
                sparse[name] = list(t.shape)
                continue
        tensors[name] = t
    return tensors, {"format": FORMAT, "sparse": json.dumps(sparse)}


def decode_state_dict(
    tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None
) -> dict[str, torch.Tensor]:
    """Invert :func:`encode_state_dict` (a plain safetensors state_dict passes through)."""
    sparse = json.loads((metadata or {}).get("sparse", "{}"))
    state = {name: t for name, t in tensors.items() if not name.endswith((MASK, VALUES))}
    for name, shape in sparse.items():
        numel = math.prod(shape)
        keep = np.unpackbits(tensors[name + MASK].numpy(), count=numel).astype(bool)
        values = tensors[name + VALUES]
        if int(keep.sum()) != values.numel():
            raise ValueError(
                f"Sparse tensor '{name}': mask has {int(keep.sum())} entries but {values.numel()} values."
            )
        dense = torch.zeros(numel, dtype=values.dtype)
        dense[torch.from_numpy(keep)] = values
        state[name] = dense.view(shape)
    return state


def serialize_state_dict(state: dict[str, torch.Tensor], *, history: list | None = None) -> bytes:
    """The exact bytes of the weights file for ``state`` and its structured-pruning ``history``."""
    from safetensors.torch import save

    tensors, meta = encode_state_dict(state)
    return save(tensors, metadata={**meta, HISTORY_KEY: json.dumps(history or [])})


def artifact_bytes(state: dict[str, torch.Tensor], *, history: list | None = None) -> int:
    """Size in bytes of the weights file autoprune writes for ``state`` (and ``history``)."""
    return len(serialize_state_dict(state, history=history))
