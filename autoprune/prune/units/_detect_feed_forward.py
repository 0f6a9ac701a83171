"""Detectors of feed-forward blocks: ``(prefix, module) -> FeedForwardLayout | None``.

A feed-forward block is two linear layers (up, down) or three (gate, up, down),
in a module or a ``Sequential``, or BERT's ``intermediate.dense`` feeding
``output.dense``.

Example:
    >>> from torch import nn
    >>> sequential_feed_forward("mlp.", nn.Sequential(nn.Linear(4, 16), nn.GELU(), nn.Linear(16, 4)))
    FeedForwardLayout(up='mlp.0', down='mlp.2', gates=(), norms=())
    >>> sequential_feed_forward("", nn.Sequential(nn.Linear(4, 16), nn.Linear(4, 16))) is None
    True
"""

from __future__ import annotations

from torch import nn

from autoprune.prune.units._layout_fields import child_at, linear_children, width_children
from autoprune.prune.units._layout_types import FeedForwardLayout


def _is_free(module: nn.Module) -> bool:
    return not any(True for _ in module.parameters())


def _up_down(a: nn.Linear, b: nn.Linear) -> bool:
    return a.out_features == b.in_features and a.in_features == b.out_features


def sequential_feed_forward(prefix: str, module: nn.Module) -> FeedForwardLayout | None:
    """A ``Sequential`` with linear (up), parameter-free modules, linear (down)."""
    if not isinstance(module, nn.Sequential):
        return None
    items = list(module.named_children())
    for i, (up_name, up) in enumerate(items):
        if not isinstance(up, nn.Linear):
            continue
        for down_name, down in items[i + 1 :]:
            if isinstance(down, nn.Linear):
                if _up_down(up, down):
                    return FeedForwardLayout(up=f"{prefix}{up_name}", down=f"{prefix}{down_name}")
                break
            if not _is_free(down):
                break
    return None


def module_feed_forward(prefix: str, module: nn.Module) -> FeedForwardLayout | None:
    """A module whose linear children are up and down, or gate, up and down (same shapes)."""
    if isinstance(module, nn.Sequential):
        return None
    children = list(linear_children(module).items())
    if len(children) == 2 and _up_down(children[0][1], children[1][1]):
        (up, a), (down, _) = children
        gates: tuple[str, ...] = ()
    elif (
        len(children) == 3
        and children[0][1].weight.shape == children[1][1].weight.shape
        and _up_down(children[1][1], children[2][1])
    ):
        (gate, _), (up, a), (down, _) = children
        gates = (f"{prefix}{gate}",)
    else:
        return None
    skip = [name for name, _ in children]
    extra, norms = width_children(module, a.out_features, skip)
    if extra or any(
        not _is_free(c)
        for n, c in module.named_children()
        if n not in skip + norms
        and any(p.shape and p.shape[0] == a.out_features for p in c.parameters())
    ):
        return None
    return FeedForwardLayout(
        up=f"{prefix}{up}",
        down=f"{prefix}{down}",
        gates=gates,
        norms=tuple(f"{prefix}{n}" for n in norms),
    )


def bert_feed_forward(prefix: str, module: nn.Module) -> FeedForwardLayout | None:
    """BERT's feed-forward block: ``intermediate.dense`` feeding ``output.dense``."""
    up, down = child_at(module, "intermediate.dense"), child_at(module, "output.dense")
    if isinstance(up, nn.Linear) and isinstance(down, nn.Linear) and _up_down(up, down):
        return FeedForwardLayout(up=f"{prefix}intermediate.dense", down=f"{prefix}output.dense")
    return None
