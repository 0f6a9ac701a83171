"""Devices: validate a ``--device`` and move batches to where a model lives.

Example:
    >>> resolve_device("cpu")
    device(type='cpu')
    >>> import torch
    >>> model_device(torch.nn.Linear(2, 2))
    device(type='cpu')
"""

from __future__ import annotations

import torch
from torch import nn

from autoprune.errors import AutopruneError


def resolve_device(text: str | torch.device | None) -> torch.device:
    """``cpu``, ``cuda`` or ``cuda:N`` as a torch.device; an unavailable device is a clear error."""
    if text is None:
        return torch.device("cpu")
    try:
        device = torch.device(text)
    except (RuntimeError, TypeError):
        raise AutopruneError(
            f"The 'device' parameter must be cpu, cuda or cuda:N. Got {text!r} instead."
        ) from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise AutopruneError(
                f"Device {text!r} was asked for, but CUDA is not available on this machine."
            )
        index = device.index or 0
        if index >= torch.cuda.device_count():
            raise AutopruneError(
                f"Device {text!r} does not exist: this machine has {torch.cuda.device_count()} CUDA device(s)."
            )
    elif device.type != "cpu":
        raise AutopruneError(
            f"The 'device' parameter must be cpu, cuda or cuda:N. Got {text!r} instead."
        )
    return device


def model_device(model: nn.Module) -> torch.device:
    """Where the model's parameters live (cpu for a model without parameters)."""
    for parameter in model.parameters():
        return parameter.device
    return torch.device("cpu")


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels (CUDA), so a timing measures the work itself."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
