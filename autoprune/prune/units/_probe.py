"""Checking a detected layout on the model itself: remove one unit from a copy and run it.

A detector sees a module's fields and shapes, not its forward pass. Before the
units of a layout are offered, :func:`probe_layouts` runs the model once on its
example input, recording the inputs and outputs of one block of each kind,
removes a unit from a copy of that block and runs the copy on the same inputs.
A kind of block whose copy fails, or gives outputs of other shapes, is left out
with a note saying why (Swin's window attention, for one, derives its head size
from its input width). Blocks the example input does not run are left out too.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from autoprune.prune.units._layouts import find_layouts
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 4))
    >>> _, ffn = find_layouts(model)
    >>> _, kept, notes = probe_layouts(model, torch.zeros(1, 4), {}, ffn)
    >>> list(kept), notes
    (['0'], [])
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable

import torch
from torch import nn

from autoprune._echo import shorten
from autoprune.prune.units._layouts import AttentionLayout, FeedForwardLayout
from autoprune.prune.units._slicing import cut_heads, cut_neurons, kv_heads_now

Layout = AttentionLayout | FeedForwardLayout
_PLAIN = (torch.Tensor, int, float, bool, str, type(None))


def _names(layout: Layout) -> list[str]:
    if isinstance(layout, AttentionLayout):
        return [*layout.projections, layout.output, *layout.norms]
    return [layout.up, layout.down, *layout.gates, *layout.norms]


def scope_of(layout: Layout) -> str:
    """The innermost module holding every layer of ``layout``."""
    parents = [name.split(".")[:-1] for name in _names(layout)]
    common = []
    for parts in zip(*parents, strict=False):
        if len(set(parts)) != 1:
            break
        common.append(parts[0])
    return ".".join(common)


def _strip(name: str, scope: str) -> str:
    return name[len(scope) + 1 :] if scope else name


def relative(layout: Layout, scope: str) -> Layout:
    """``layout`` with its names relative to module ``scope``."""
    changes = {}
    for field in dataclasses.fields(layout):
        value = getattr(layout, field.name)
        if field.name.endswith("fields"):
            continue
        if isinstance(value, str):
            changes[field.name] = "" if value == scope else _strip(value, scope)
        elif isinstance(value, tuple):
            changes[field.name] = tuple(_strip(v, scope) for v in value)
    return dataclasses.replace(layout, **changes)


def _plain(value):
    """``value`` if it is tensors and plain values (nested in tuples, lists, dicts), else None."""
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, (tuple, list)):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return None  # a cache object or the like: the copy runs without it


def _shapes(value):
    if isinstance(value, torch.Tensor):
        return tuple(value.shape)
    if isinstance(value, (tuple, list)):
        return tuple(_shapes(v) for v in value)
    if isinstance(value, dict):
        return tuple((k, _shapes(v)) for k, v in value.items())
    return None


def _record(model: nn.Module, example_input: torch.Tensor, scopes: list[str]) -> dict:
    """Inputs and output of the first call of each module in ``scopes``."""
    calls: dict[str, tuple] = {}
    modules = dict(model.named_modules())
    hooks = []
    for scope in scopes:

        def hook(module, args, kwargs, output, scope=scope):
            calls.setdefault(scope, (_plain(args), _plain(kwargs), _shapes(output)))

        hooks.append(modules[scope].register_forward_hook(hook, with_kwargs=True))
    forward_once(model, example_input, hooks)
    return calls


def forward_once(model: nn.Module, example_input, hooks: list) -> None:
    """One forward pass of ``model`` in eval mode without gradients, then the hooks are removed."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(example_input)
    finally:
        for handle in hooks:
            handle.remove()
        model.train(was_training)


def _cut_one(block: nn.Module, layout: Layout) -> bool:
    """Remove unit 0 of ``layout`` from ``block``; False when it has a single unit."""
    modules = dict(block.named_modules())
    if isinstance(layout, AttentionLayout):
        if kv_heads_now(modules, layout) < 2:
            return False
        cut_heads(modules, layout, {0})
    else:
        if modules[layout.up].out_features < 2:
            return False
        cut_neurons(modules, layout, {0})
    return True


def _try(module: nn.Module, layout: Layout, call: tuple) -> str | None:
    """Why removing a unit of ``layout`` from a copy of ``module`` breaks it (None: it does not)."""
    args, kwargs, shapes = call
    block = copy.deepcopy(module).eval()
    try:
        if not _cut_one(block, layout):
            return None
        with torch.no_grad():
            out = block(*args, **kwargs)
    except Exception as exc:  # any failure of the model's own code is the answer
        return f"{type(exc).__name__}: {shorten(' '.join(str(exc).split()), 120, text=True)}"
    if _shapes(out) != shapes:
        return f"its outputs change shape from {shapes} to {_shapes(out)}"
    return None


def probe_layouts(
    model: nn.Module,
    example_input: torch.Tensor,
    attention: dict[str, AttentionLayout],
    feed_forward: dict[str, FeedForwardLayout],
) -> tuple[dict[str, AttentionLayout], dict[str, FeedForwardLayout], list[str]]:
    """The layouts whose units can be removed (one block of each kind tried), and notes on the rest."""
    modules = dict(model.named_modules())
    layouts: dict[str, Layout] = {**attention, **feed_forward}
    scopes = {unit: scope_of(layout) for unit, layout in layouts.items()}
    kinds: dict[tuple, list[str]] = {}
    for unit, layout in layouts.items():
        key = (type(layout).__name__, type(modules[scopes[unit]]).__qualname__)
        kinds.setdefault(key, []).append(unit)
    calls = _record(model, example_input, sorted({scopes[u] for u in layouts}))
    notes, bad = [], set()
    for (kind, owner), units in kinds.items():
        what = "attention heads" if kind == "AttentionLayout" else "feed-forward neurons"
        ran = [u for u in units if scopes[u] in calls]
        bad.update(set(units) - set(ran))
        if len(ran) < len(units):
            notes.append(_note(what, owner, units, ran, "the example input does not run them"))
        if not ran:
            continue
        unit = ran[0]
        scope = scopes[unit]
        reason = _try(modules[scope], relative(layouts[unit], scope), calls[scope])
        if reason:
            bad.update(ran)
            notes.append(
                f"The {what} of {len(ran)} {owner} block(s) (e.g. '{scope}') are left out: "
                f"removing one breaks the block ({reason})."
            )
    keep: Callable[[dict], dict] = lambda found: {u: v for u, v in found.items() if u not in bad}  # noqa: E731
    return keep(attention), keep(feed_forward), notes


def _note(what: str, owner: str, units: list[str], ran: list[str], why: str) -> str:
    missing = [u for u in units if u not in ran]
    return (
        f"The {what} of {len(missing)} {owner} block(s) (e.g. '{missing[0]}') are left out: {why}."
    )
