"""Hugging Face ``Conv1D`` layers (GPT-2's projections) as ``nn.Linear``.

``Conv1D`` is a linear layer whose weight is stored transposed, ``(in, out)``.
autoprune prunes ``nn.Linear`` and convolutions, so :func:`convert_conv1d`
replaces every ``Conv1D`` of a model by :class:`TransposedLinear`: an
``nn.Linear`` computing the same function whose state dict keeps the ``(in,
out)`` layout, so checkpoints written for the original model load unchanged and
the weights autoprune saves load into the original model. Call it in the
``build_model`` of a task (a GPT-2 task's heads and neurons are then found by
the fused-projection and feed-forward detectors).

Example:
    >>> import torch
    >>> from transformers.pytorch_utils import Conv1D
    >>> model = torch.nn.Sequential(Conv1D(6, 4))
    >>> x = torch.randn(2, 4); before = model(x)
    >>> convert_conv1d(model) is model, type(model[0]).__name__
    (True, 'TransposedLinear')
    >>> bool(torch.allclose(model(x), before)), tuple(model.state_dict()["0.weight"].shape)
    (True, (4, 6))
"""

from __future__ import annotations

import torch
from torch import nn

from autoprune.errors import PruningError


class TransposedLinear(nn.Linear):
    """``nn.Linear`` whose state dict stores the weight as ``(in_features, out_features)``."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__(in_features, out_features, bias=bias)
        self.register_state_dict_post_hook(_transpose_out)
        self.register_load_state_dict_pre_hook(_transpose_in)


def _transpose_out(module, state_dict, prefix, local_metadata) -> None:
    key = prefix + "weight"
    if key in state_dict:
        state_dict[key] = state_dict[key].t()


def _transpose_in(module, state_dict, prefix, *args) -> None:
    key = prefix + "weight"
    if key in state_dict and state_dict[key].dim() == 2:
        state_dict[key] = state_dict[key].t()


def is_conv1d(module: nn.Module) -> bool:
    """Whether ``module`` is a Hugging Face ``Conv1D`` (a transposed linear layer)."""
    return (
        type(module).__name__ == "Conv1D"
        and isinstance(getattr(module, "nf", None), int)
        and getattr(module, "weight", None) is not None
        and module.weight.dim() == 2
        and module.weight.shape[1] == module.nf
    )


def convert_conv1d(model: nn.Module) -> nn.Module:
    """Replace every Hugging Face ``Conv1D`` of ``model`` by an equal :class:`TransposedLinear`, in place."""
    for name, module in list(model.named_modules()):
        if not is_conv1d(module):
            continue
        n_in, n_out = module.weight.shape
        linear = TransposedLinear(n_in, n_out, bias=module.bias is not None)
        with torch.no_grad():
            linear.weight.copy_(module.weight.t())
            if module.bias is not None:
                linear.bias.copy_(module.bias)
        linear.train(module.training)
        linear.to(module.weight.device, module.weight.dtype)
        if name:
            owner, _, attribute = name.rpartition(".")
            setattr(model.get_submodule(owner) if owner else model, attribute, linear)
        else:
            raise PruningError("convert_conv1d needs a model that contains the Conv1D layer.")
    return model
