"""Weights files: safetensors written atomically, and nothing ever unpickled.

A ``.pt``/``.pth`` state_dict is read with ``torch.load(weights_only=True)`` and
nothing else; a module that reads its own version while loading gets the
rebuilt model's (:func:`load_into`).

Example:
    >>> import tempfile, torch, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> save_weights(d / "w.safetensors", {"w": torch.ones(2)})
    >>> load_weights(d / "w.safetensors")["w"].tolist()
    [1.0, 1.0]
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from autoprune._io import atomic_path
from autoprune.errors import AutopruneError


def save_weights(
    path: str | os.PathLike,
    state_dict: dict[str, torch.Tensor],
    metadata: dict[str, str] | None = None,
) -> None:
    """Atomically save a state_dict as safetensors."""
    from safetensors.torch import save_file

    tensors = {name: t.detach().contiguous().clone() for name, t in state_dict.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def load_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load a state_dict from safetensors, or from a ``.pt`` file without unpickling objects."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise AutopruneError(f"Weights file not found: {path}")
    if path.suffix == ".safetensors":
        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise AutopruneError(
                f"{path} is not a readable safetensors file (truncated?): {exc}"
            ) from exc
    import pickle
    import re

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:  # the weights-only unpickler refuses anything but tensors
        found = re.search(r"GLOBAL ([\w.]{1,120})", str(exc))
        raise AutopruneError(
            f"{path} holds pickled Python objects{f' ({found.group(1)})' if found else ''}, not a plain "
            "state_dict: autoprune reads weights only, a state_dict of tensors (torch.save(model.state_dict(), "
            "path)) or a .safetensors file, and never unpickles objects."
        ) from exc
    except Exception as exc:  # a truncated or foreign file
        text = " ".join(str(exc).split())
        text = "" if "weights_only" in text else f": {text[:200]}"
        raise AutopruneError(
            f"{path} could not be read as a plain state_dict (weights only; truncated, or not a file "
            f"torch.save wrote?): {type(exc).__name__}{text}"
        ) from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise AutopruneError(f"{path} does not hold a state_dict of tensors.")
    return state


def load_into(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """``model.load_state_dict(state)`` with the model's own module versions.

    A weights file keeps tensors only, not the per-module ``version`` metadata a
    ``state_dict()`` carries; modules that read it while loading (torchvision's
    MNASNet refuses a state without one) are given the versions of the rebuilt
    model itself, which wrote those tensors.

    Example:
        >>> layer = torch.nn.BatchNorm1d(2)
        >>> load_into(layer, {k: v.clone() for k, v in layer.state_dict().items()})
    """
    from collections import OrderedDict

    versioned = OrderedDict(state)
    versioned._metadata = getattr(model.state_dict(), "_metadata", OrderedDict())  # type: ignore[attr-defined]
    model.load_state_dict(versioned)
