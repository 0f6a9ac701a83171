"""What layout detectors read off a module: integer fields, linear children, same-width children.

Example:
    >>> from torch import nn
    >>> block = nn.Module()
    >>> block.q, block.norm, block.num_heads = nn.Linear(4, 8), nn.LayerNorm(8), 2
    >>> list(linear_children(block)), int_field(block, ("n_head", "num_heads"))
    (['q'], 2)
    >>> role_of(linear_children(block), "query"), width_children(block, 8, ["q"])
    ('q', ([], ['norm']))
"""

from __future__ import annotations

from collections.abc import Iterable

from torch import nn

from autoprune.prune.units._layout_types import ROLES


def child_at(module: object, path: str) -> object:
    """The submodule at dotted ``path`` of ``module``, or None."""
    for part in path.split("."):
        module = getattr(module, part, None)
    return module


def int_field(module: nn.Module, names: Iterable[str]) -> int | None:
    """The first positive integer among the fields ``names`` of ``module``."""
    for name in names:
        value = getattr(module, name, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def int_fields(module: nn.Module, names: Iterable[str]) -> tuple[str, ...]:
    """Those of ``names`` that are integer fields of ``module``."""
    return tuple(n for n in names if isinstance(getattr(module, n, None), int))


def linear_children(module: nn.Module) -> dict[str, nn.Linear]:
    """The direct ``nn.Linear`` children of ``module``, by name."""
    return {n: c for n, c in module.named_children() if isinstance(c, nn.Linear)}


def role_of(children: dict[str, nn.Linear], role: str) -> str | None:
    """The name among ``children`` that plays ``role`` (``"query"``, ``"output"``...), if any."""
    return next((n for n in ROLES[role] if n in children), None)


def width_children(
    module: nn.Module, width: int, skip: Iterable[str]
) -> tuple[list[str], list[str]]:
    """Direct children other than ``skip`` acting on ``width`` features: linear gates and norms."""
    gates, norms = [], []
    for name, child in module.named_children():
        if name in skip:
            continue
        params = list(child.parameters(recurse=False))
        if isinstance(child, nn.Linear) and child.out_features == width:
            gates.append(name)
        elif params and all(p.dim() == 1 and p.shape[0] == width for p in params):
            norms.append(name)
    return gates, norms
