"""The layer whose columns are a model's input features: finding it, and keeping some columns.

:class:`SelectedInputsLinear` is a narrowed first layer that still takes the
whole input and reads only the kept columns, so a model with fewer input
features runs on its task's data unchanged (search, fine-tuning, evaluation);
:func:`reduce_inputs` turns it into a plain ``nn.Linear`` that takes the kept
columns only.

Example:
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    >>> name, layer = first_linear(model, None)
    >>> keep_columns(layer, [0, 2])
    >>> name, layer.in_features, model(torch.ones(1, 2)).shape
    ('0', 2, torch.Size([1, 2]))
    >>> model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    >>> select_columns(model, "0", [1, 3])
    >>> model[0], model(torch.ones(5, 4)).shape
    (SelectedInputsLinear(kept=[1, 3] of 4, out_features=3, bias=True), torch.Size([5, 2]))
    >>> reduce_inputs(model), model(torch.ones(5, 2)).shape
    ((1, 3), torch.Size([5, 2]))
"""

from __future__ import annotations

import torch
from torch import nn

from autoprune._echo import shorten
from autoprune.errors import ParameterError, PruningError
from autoprune.introspect import prunable_layers


class SelectedInputsLinear(nn.Linear):
    """An ``nn.Linear`` over some columns of its input: ``linear(x[..., kept])``.

    It takes inputs as wide as the dense layer's (``n_inputs``) and keeps only the
    weight columns of ``kept``; everything that handles an ``nn.Linear`` (pruning,
    costs, export) handles it.
    """

    def __init__(self, layer: nn.Linear, kept) -> None:
        super().__init__(len(kept), layer.out_features, bias=layer.bias is not None)
        self.n_inputs = layer.in_features
        index = torch.as_tensor(list(kept), dtype=torch.long, device=layer.weight.device)
        self.register_buffer("kept", index, persistent=False)
        self.weight = nn.Parameter(layer.weight.detach().index_select(1, index).clone())
        if layer.bias is not None:
            self.bias = nn.Parameter(layer.bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.index_select(-1, self.kept))

    def extra_repr(self) -> str:
        return (
            f"kept={self.kept.tolist()} of {self.n_inputs}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )


def select_columns(model: nn.Module, layer: str, kept) -> None:
    """Replace ``model``'s layer ``layer`` (an ``nn.Linear``), in place, by one that reads columns ``kept``."""
    module = model.get_submodule(layer)
    parent_name, _, child = layer.rpartition(".")
    model.get_submodule(parent_name).register_module(child, SelectedInputsLinear(module, kept))


def reduce_inputs(model: nn.Module) -> tuple[int, ...]:
    """Make ``model`` take only its kept input columns, in place; returns their indices.

    The :class:`SelectedInputsLinear` layer becomes a plain ``nn.Linear`` with the
    same weights: feed the model ``x[:, kept]``. Returns ``()`` (and changes
    nothing) when the model reads every input.
    """
    for name, module in list(model.named_modules()):
        if isinstance(module, SelectedInputsLinear):
            plain = nn.Linear(module.in_features, module.out_features, bias=module.bias is not None)
            plain.weight, plain.bias = module.weight, module.bias
            parent_name, _, child = name.rpartition(".")
            model.get_submodule(parent_name).register_module(child, plain.to(module.weight.device))
            return tuple(module.kept.tolist())
    return ()


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
