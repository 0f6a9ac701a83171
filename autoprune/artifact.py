"""The weights file autoprune writes: safetensors with a compact encoding for sparse tensors.

A floating-point tensor with enough zeros is stored as a packed bitmask (one
bit per element, ``NAME.__mask__``, uint8) plus its non-zero values in order
(``NAME.__values__``); its shape goes in the file's metadata. Any other tensor
is stored as is. The encoding is chosen per tensor, only where it is smaller.
The structured-pruning history goes in the metadata too, as JSON (see
:class:`~autoprune.prune.units.HistoryEntry`). :func:`artifact_bytes` is the
exact size of that file, so a size budget is a promise about the bytes on disk.

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
from collections.abc import Sequence

import numpy as np
import torch

from autoprune._echo import shorten
from autoprune.errors import AutopruneError
from autoprune.prune.units import HistoryEntry, history_to_json

FORMAT = "autoprune-sparse-v1"
MASK, VALUES = ".__mask__", ".__values__"
HISTORY_KEY = "autoprune.history"  # metadata: the structured-pruning history, JSON
MAX_DIMS = 8  # more dimensions than any stored tensor has


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
    tensors: dict[str, torch.Tensor],
    metadata: dict[str, str] | None,
    *,
    expected: dict[str, torch.Size | list[int]] | None = None,
    source: str = "the weights file",
) -> dict[str, torch.Tensor]:
    """Invert :func:`encode_state_dict` (a plain safetensors state_dict passes through).

    Every sparse entry is checked before anything is allocated: its shape is a list of
    non-negative integers whose element count the stored bitmask holds exactly, and, with
    ``expected`` (the shapes of the model the weights are for), the model's shape for that
    name. A bad entry is an :class:`AutopruneError` naming ``source`` and the entry.
    """
    sparse = _sparse_entries(metadata, source)
    state = {name: t for name, t in tensors.items() if not name.endswith((MASK, VALUES))}
    stray = [
        name for name in tensors if name.endswith((MASK, VALUES)) and _base(name) not in sparse
    ]
    if stray:
        raise AutopruneError(
            f"{source}: tensor '{shorten(stray[0], text=True)}' has no entry in the 'sparse' metadata (edited or damaged?)."
        )
    for name, shape in sparse.items():
        mask, values = _sparse_parts(tensors, name, shape, expected, source)
        numel = math.prod(shape)
        keep = np.unpackbits(mask.numpy(), count=numel).astype(bool)
        if int(keep.sum()) != values.numel():
            raise AutopruneError(
                f"{source}: sparse tensor '{shorten(name, text=True)}' has a mask of {int(keep.sum())} entries "
                f"but {values.numel()} values (edited or damaged?)."
            )
        dense = torch.zeros(numel, dtype=values.dtype)
        dense[torch.from_numpy(keep)] = values
        state[name] = dense.view(shape)
    return state


def _base(name: str) -> str:
    return name.removesuffix(MASK).removesuffix(VALUES)


def _sparse_entries(metadata: dict[str, str] | None, source: str) -> dict[str, list[int]]:
    """The 'sparse' metadata: names mapped to shapes (lists of non-negative integers)."""
    try:
        sparse = json.loads((metadata or {}).get("sparse", "{}"))
    except (ValueError, RecursionError) as exc:
        raise AutopruneError(
            f"{source}: the 'sparse' metadata is not valid JSON (edited or damaged?): {shorten(exc, text=True)}"
        ) from exc
    if not isinstance(sparse, dict):
        raise AutopruneError(
            f"{source}: the 'sparse' metadata must map tensor names to shapes. "
            f"Got {type(sparse).__name__} instead."
        )
    for name, shape in sparse.items():
        if not (
            isinstance(shape, list)
            and len(shape) <= MAX_DIMS
            and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
        ):
            raise AutopruneError(
                f"{source}: sparse tensor '{shorten(name, text=True)}' must have a shape that is a list of "
                f"at most {MAX_DIMS} non-negative integers. Got {shorten(shape, text=True)} instead."
            )
    return sparse


def _sparse_parts(tensors, name, shape, expected, source) -> tuple[torch.Tensor, torch.Tensor]:
    """The bitmask and values of sparse tensor ``name``, checked against ``shape`` and ``expected``."""
    where = f"{source}: sparse tensor '{shorten(name, text=True)}'"
    if expected is not None:
        if name not in expected:
            raise AutopruneError(
                f"{where} is not a tensor of the rebuilt model (edited or damaged?)."
            )
        if list(expected[name]) != shape:
            raise AutopruneError(
                f"{where} has shape {shorten(shape, text=True)}, but the rebuilt model's has "
                f"{list(expected[name])} (edited or damaged?)."
            )
    mask, values = tensors.get(name + MASK), tensors.get(name + VALUES)
    if mask is None or values is None:
        raise AutopruneError(f"{where} lacks its {MASK if mask is None else VALUES} tensor.")
    if mask.dtype != torch.uint8 or mask.dim() != 1 or values.dim() != 1:
        raise AutopruneError(
            f"{where} must be stored as a 1-D uint8 mask and 1-D values. "
            f"Got a {mask.dtype} mask of shape {list(mask.shape)} and values of shape {list(values.shape)} instead."
        )
    numel = math.prod(shape)
    if mask.numel() != math.ceil(numel / 8) or values.numel() > numel:
        raise AutopruneError(
            f"{where} has shape {shorten(shape, text=True)} ({numel} elements), which its mask of "
            f"{mask.numel()} bytes and {values.numel()} values cannot hold (edited or damaged?)."
        )
    return mask, values


def read_history(
    metadata: dict[str, str] | None, model, *, source: str = "the weights file"
) -> list[HistoryEntry]:
    """The structured-pruning history in ``metadata``, checked against ``model`` before any replay.

    ``model`` is the freshly built (dense) model the history is to be replayed on: there
    is at most one entry per module, each entry is ``[module, kind, removed]`` where
    ``module`` names a module of ``model``, ``kind`` is a bool, ``"heads"`` or
    ``"neurons"``, and ``removed`` is a hex bitmask (or a list of indices) no wider than
    the module's largest parameter dimension. Anything else is an
    :class:`AutopruneError` naming ``source`` and the entry.
    """
    try:
        history = json.loads((metadata or {}).get(HISTORY_KEY, "[]"))
    except (ValueError, RecursionError) as exc:
        raise AutopruneError(
            f"{source}: the structured-pruning history is not valid JSON (edited or damaged?): {shorten(exc, text=True)}"
        ) from exc
    modules = dict(model.named_modules())
    if not isinstance(history, list):
        raise AutopruneError(
            f"{source}: the structured-pruning history must be a list. Got {type(history).__name__} instead."
        )
    if len(history) > len(modules):
        raise AutopruneError(
            f"{source}: the structured-pruning history has {len(history)} entries, more than the "
            f"model's {len(modules)} modules (edited or damaged?)."
        )
    for i, entry in enumerate(history):
        _check_history_entry(entry, modules, f"{source}: structured-pruning history entry {i}")
    return [HistoryEntry.from_json(entry) for entry in history]


def _check_history_entry(entry, modules: dict, where: str) -> None:
    if not (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], str)):
        raise AutopruneError(
            f"{where} must be [module name, kind, removed units]. Got {shorten(entry, text=True)} instead."
        )
    name, kind, removed = entry
    if name not in modules:
        raise AutopruneError(
            f"{where} names module '{shorten(name, text=True)}', which the model does not have."
        )
    if not (isinstance(kind, bool) or kind in ("heads", "neurons")):
        raise AutopruneError(
            f"{where} ('{shorten(name, text=True)}') must have a kind of true, false, 'heads' or 'neurons'. "
            f"Got {shorten(kind, text=True)} instead."
        )
    units = max((max(p.shape, default=0) for p in modules[name].parameters()), default=0)
    if isinstance(removed, str):
        ok = 0 < len(removed) <= max(1, math.ceil(units / 4)) and all(
            c in "0123456789abcdefABCDEF" for c in removed
        )
        ok = ok and int(removed, 16).bit_length() <= units
    else:
        ok = (
            isinstance(removed, list)
            and len(removed) <= units
            and all(
                isinstance(i, int) and not isinstance(i, bool) and 0 <= i < units for i in removed
            )
        )
    if not ok:
        raise AutopruneError(
            f"{where} ('{shorten(name, text=True)}') must list removed units as a hex bitmask or a list of "
            f"indices below {units} (the module's size). Got {shorten(removed, 60, text=True)} instead."
        )


def serialize_state_dict(
    state: dict[str, torch.Tensor], *, history: Sequence[HistoryEntry | list] | None = None
) -> bytes:
    """The exact bytes of the weights file for ``state`` and its structured-pruning ``history``.

    ``history`` holds :class:`HistoryEntry` items (lists in their JSON form are accepted).
    """
    from safetensors.torch import save

    tensors, meta = encode_state_dict(state)
    return save(tensors, metadata={**meta, HISTORY_KEY: history_to_json(history)})


def artifact_bytes(
    state: dict[str, torch.Tensor], *, history: Sequence[HistoryEntry | list] | None = None
) -> int:
    """Size in bytes of the weights file autoprune writes for ``state`` (and ``history``)."""
    return len(serialize_state_dict(state, history=history))
