"""Which layers can be pruned.

A prunable layer is a module with a ``weight`` that pruning can thin out:
convolutions and linear layers (their weight elements, output channels or
neurons).

Example:
    >>> from autoprune.tasks.models import FashionCNN
    >>> list(prunable_layers(FashionCNN()))
    ['conv1', 'conv2', 'fc1', 'fc2']
"""

from __future__ import annotations

from torch import nn

from autoprune.errors import PruningError

PRUNABLE_TYPES: tuple[type[nn.Module], ...] = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def prunable_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Prunable layers of ``model`` by qualified name, in definition order."""
    return {
        name: module
        for name, module in model.named_modules()
        if isinstance(module, PRUNABLE_TYPES) and getattr(module, "weight", None) is not None
    }


def get_layer(model: nn.Module, name: str) -> nn.Module:
    """The prunable layer called ``name``; the error lists the valid names."""
    layers = prunable_layers(model)
    if name not in layers:
        known = ", ".join(layers) or "none"
        raise PruningError(f"The model has no prunable layer '{name}'. Prunable layers: {known}.")
    return layers[name]
