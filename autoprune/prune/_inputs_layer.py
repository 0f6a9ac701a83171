"""The layer whose columns are a model's input features: finding it, and keeping some columns.

Example:
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    >>> name, layer = first_linear(model, None)
    >>> keep_columns(layer, [0, 2])
    >>> name, layer.in_features, model(torch.ones(1, 2)).shape
    ('0', 2, torch.Size([1, 2]))
"""

from __future__ import annotations

import torch
from torch import nn

from autoprune._echo import shorten
from autoprune.errors import ParameterError, PruningError
from autoprune.introspect import prunable_layers


def first_linear(model: nn.Module, layer: str | None) -> tuple[str, nn.Linear]:
    """The name and module of the layer that reads the model's input; it must be an ``nn.Linear``."""
    layers = prunable_layers(model)
    if not layers:
        raise PruningError("The model has no prunable layer, so no input features to prune.")
    if layer is None:
        layer = next(iter(layers))
    elif layer not in layers:
        raise ParameterError(
            f"The 'layer' parameter must name a prunable layer of the model ({', '.join(layers)}). "
            f"Got {shorten(layer)} instead."
        )
    module = layers[layer]
    if not isinstance(module, nn.Linear):
        raise PruningError(
            f"Input features are the columns of a first nn.Linear layer; the first layer "
            f"'{layer}' is {type(module).__name__}."
        )
    called = first_called(model, layers, layer)
    if called != layer:
        raise PruningError(
            f"Layer '{layer}' does not read the model's input: on inputs (N, {module.in_features}) "
            f"the first layer to run is '{called}'. Pass layer= the first layer."
        )
    return layer, module


def first_called(model: nn.Module, layers: dict[str, nn.Module], layer: str) -> str | None:
    """The first of ``layers`` that runs on a zero input as wide as ``layer``'s inputs."""
    width = layers[layer].in_features
    order: list[str] = []
    hooks = [
        module.register_forward_pre_hook(lambda *_, name=name: order.append(name))
        for name, module in layers.items()
    ]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, width, device=layers[next(iter(layers))].weight.device))
    except Exception as exc:  # user model: say why, in one line
        raise PruningError(
            f"Layer '{layer}' does not read the model's input: the model does not run on inputs "
            f"(N, {width}) ({type(exc).__name__}: {shorten(exc, text=True)}). Pass layer= the first layer."
        ) from exc
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return order[0] if order else None


def keep_columns(layer: nn.Linear, kept: list[int]) -> None:
    """Keep columns ``kept`` of ``layer``'s weight, in place (its ``in_features`` shrinks)."""
    weight = layer.weight
    index = torch.as_tensor(kept, dtype=torch.long, device=weight.device)
    narrow = weight.data.index_select(1, index).clone()
    layer.weight = nn.Parameter(narrow, requires_grad=weight.requires_grad)
    layer.in_features = len(kept)
