"""Finding the blocks a model stays valid without, and skipping them.

A candidate is a child of an ``nn.Sequential`` or ``nn.ModuleList`` that has
parameters, runs once per forward pass and returns (alone or first in a tuple)
a tensor of its input's shape. It is removable when it is a residual block with
an identity shortcut (its traced forward adds its own input, unchanged, to
something) or a transformer layer (it holds an attention block), and the model
still runs, with the same output shape, when the block passes its input through.
"""

from __future__ import annotations

import operator

import torch
from torch import nn

from autoprune.errors import PruningError

_ADDS = {operator.add, operator.iadd, torch.add}


class SkippedBlock(nn.Module):
    """What a removed block becomes: it returns its first input (in a 1-tuple when the block did)."""

    def __init__(self, tuple_output: bool = False) -> None:
        super().__init__()
        self.tuple_output = tuple_output

    def forward(self, hidden, *args, **kwargs):
        return (hidden,) if self.tuple_output else hidden

    def extra_repr(self) -> str:
        return "tuple_output=True" if self.tuple_output else ""


def run(model: nn.Module, example_input) -> object:
    """``model``'s output for ``example_input`` (a tensor, or a dict of keyword inputs), in eval
    mode (BatchNorm statistics untouched); every module's mode is restored afterwards."""
    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        with torch.no_grad():
            if isinstance(example_input, dict):
                return model(**example_input)
            return model(example_input)
    finally:
        for module, training in modes.items():
            module.training = training


def first_tensor(value):
    """``value`` when it is a tensor, else its first item when that is one, else None."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (tuple, list)) and value and isinstance(value[0], torch.Tensor):
        return value[0]
    return getattr(value, "last_hidden_state", getattr(value, "logits", None))


def candidates(model: nn.Module) -> dict[str, nn.Module]:
    """Every child with parameters of a Sequential or ModuleList of ``model``, by name."""
    found = {}
    for name, module in model.named_modules():
        if isinstance(module, (nn.Sequential, nn.ModuleList)):
            prefix = f"{name}." if name else ""
            for child_name, child in module.named_children():
                if any(True for _ in child.parameters()):
                    found[prefix + child_name] = child
    return found


def observe(model: nn.Module, blocks: dict[str, nn.Module], example_input) -> dict[str, dict]:
    """Per block: how often it ran, its input and output shapes, whether it returned a tuple."""
    seen: dict[str, dict] = {name: {"calls": 0} for name in blocks}

    def hook(name):
        def record(_module, args, output):
            entry = seen[name]
            entry["calls"] += 1
            x = args[0] if args else None
            y = first_tensor(output)
            entry["input"] = tuple(x.shape) if isinstance(x, torch.Tensor) else None
            entry["output"] = tuple(y.shape) if isinstance(y, torch.Tensor) else None
            entry["tuple"] = isinstance(output, (tuple, list))

        return record

    handles = [block.register_forward_hook(hook(name)) for name, block in blocks.items()]
    try:
        run(model, example_input)
    finally:
        for handle in handles:
            handle.remove()
    return seen


def _feeds_add(node, modules: dict[str, nn.Module]) -> bool:
    """Whether ``node`` reaches an addition unchanged (through identity modules only)."""
    for user in node.users:
        if user.op == "call_function" and user.target in _ADDS:
            return True
        if user.op == "call_method" and user.target in ("add", "add_"):
            return True
        if user.op == "call_module" and isinstance(modules.get(user.target), nn.Identity):
            if _feeds_add(user, modules):
                return True
    return False


def shortcut_kind(block: nn.Module) -> str | None:
    """``"identity"`` (input added unchanged), ``"transformer"`` (holds attention), or None."""
    from autoprune.prune.units._layouts import find_layouts

    try:
        graph = torch.fx.symbolic_trace(block)
    except Exception:  # noqa: BLE001 - any model code can fail to trace; then look for attention
        graph = None
    if graph is not None:
        placeholders = [node for node in graph.graph.nodes if node.op == "placeholder"]
        if placeholders and _feeds_add(placeholders[0], dict(graph.named_modules())):
            return "identity"
    return "transformer" if find_layouts(block)[0] else None


def why_not(
    model: nn.Module, name: str, block: nn.Module, seen: dict, example_input, expected
) -> str:
    """Why block ``name`` cannot be removed (``expected``: the model's output); empty when it can."""
    if seen["calls"] != 1:
        return f"it runs {seen['calls']} times in a forward pass (expected once)"
    if seen.get("input") is None or seen.get("output") != seen["input"]:
        return (
            f"its output shape {seen.get('output')} differs from its input shape {seen.get('input')} "
            "(a downsampling or projecting block)"
        )
    if shortcut_kind(block) is None:
        return "it is neither a residual block with an identity shortcut nor a transformer layer"
    skipped = skip(model, {name: seen["tuple"]})
    try:
        output = first_tensor(run(skipped, example_input))
    except Exception as exc:  # noqa: BLE001 - the model's own code decides whether it still runs
        return f"the model fails without it ({type(exc).__name__})"
    if expected is None or output is None or output.shape != expected.shape:
        return "the model's output changes shape without it"
    return ""


def skip(model: nn.Module, blocks: dict[str, bool], *, copy: bool = True) -> nn.Module:
    """``model`` (a copy unless ``copy`` is false) with each of ``blocks`` replaced by a SkippedBlock.

    ``blocks`` maps a block's name to whether it returned a tuple.
    """
    import copy as copying

    target = copying.deepcopy(model) if copy else model
    for name, tuple_output in blocks.items():
        parent_name, _, child = name.rpartition(".")
        try:
            parent = target.get_submodule(parent_name)
        except AttributeError:
            parent = None
        if not isinstance(parent, (nn.Sequential, nn.ModuleList)) or child not in parent._modules:
            raise PruningError(
                f"The model has no block '{name:.200}' in a Sequential or ModuleList to remove."
            )
        parent._modules[child] = SkippedBlock(tuple_output)
    return target
