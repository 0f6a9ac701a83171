"""Depth pruning: whole blocks removed where the model stays valid without them.

A removable block is a child of an ``nn.Sequential`` or ``nn.ModuleList`` whose
output has its input's shape and that is a residual block with an identity
shortcut (a ResNet basic or bottleneck block without downsampling) or a
transformer layer (one holding an attention block, e.g. BERT's ``encoder.layer.N``;
layers that return a tensor or a tuple led by the hidden states are supported).
:func:`removable_blocks` lists them; :func:`block_scores` ranks them by the loss
increase when a block is skipped and by how little it changes its input
(``1 - cosine similarity`` of input and output); :func:`prune_blocks` replaces
the chosen ones by a pass-through :class:`SkippedBlock` (the other modules keep
their names), so parameters, MACs and latency fall.

The removed blocks are written to the policy file's ``results.depth``;
:func:`~autoprune.apply.load_pruned` and :func:`~autoprune.apply.apply_policy`
remove them from the freshly built model before anything else is replayed.

Example:
    >>> import torch
    >>> from autoprune.tasks.models import FashionResNet
    >>> model, x = FashionResNet(blocks=2).eval(), torch.zeros(1, 1, 28, 28)
    >>> removable_blocks(model, x)
    ('layers.0', 'layers.1', 'layers.3', 'layers.5')
    >>> result = prune_blocks(model, ["layers.1", "layers.3"], example_input=x)
    >>> result.removed, type(result.model.layers[1]).__name__, result.model(x).shape
    (('layers.1', 'layers.3'), 'SkippedBlock', torch.Size([1, 10]))
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from autoprune._echo import shorten
from autoprune.errors import PolicyError, PruningError
from autoprune.prune._depth_find import (
    SkippedBlock,
    candidates,
    first_tensor,
    observe,
    run,
    skip,
    why_not,
)
from autoprune.prune._depth_scores import BlockScore, block_scores
from autoprune.prune.units._history import HistoryEntry, as_history

RESULTS_KEY = "depth"  # where a policy document's results hold the removed blocks

__all__ = [
    "BlockScore",
    "DepthPruning",
    "SkippedBlock",
    "block_scores",
    "prune_blocks",
    "remove_policy_blocks",
    "remove_recorded_blocks",
    "removable_blocks",
    "removed_blocks",
]


def _reasons(model: nn.Module, example_input) -> tuple[dict[str, str], dict[str, dict]]:
    blocks = candidates(model)
    seen = observe(model, blocks, example_input)
    expected = first_tensor(run(model, example_input))
    reasons = {
        name: why_not(model, name, block, seen[name], example_input, expected)
        for name, block in blocks.items()
    }
    return reasons, seen


def removable_blocks(model: nn.Module, example_input) -> tuple[str, ...]:
    """Names of the blocks of ``model`` that can be removed, in module order.

    ``example_input`` is one input batch (a tensor, or a dict of keyword inputs).
    """
    reasons, _ = _reasons(model, example_input)
    return tuple(name for name, reason in reasons.items() if not reason)


@dataclass(frozen=True)
class DepthPruning:
    """A shallower model, the blocks it lost, and the structured history it carries."""

    model: nn.Module
    removed: tuple[str, ...]
    tuple_outputs: tuple[str, ...] = ()
    input_shape: tuple[int, ...] = ()
    input_dtype: str = "float32"
    history: list[HistoryEntry] = field(default_factory=list)

    def summary(self) -> str:
        """One line: which blocks were removed."""
        return f"Removed {len(self.removed)} blocks: {', '.join(self.removed)}."

    def to_dict(self) -> dict:
        """What a policy document's ``results.depth`` holds (plain data)."""
        return {"removed": list(self.removed), "tuple_outputs": list(self.tuple_outputs)}

    def document(self, policy=None):
        """A policy document recording the removed blocks, for :func:`~autoprune.apply.save_pruned`.

        ``policy`` (a Policy or PolicyDocument; default: one that prunes no weight of
        the first prunable layer) is copied; layers and fingerprint entries inside the
        removed blocks are dropped, ``results.depth`` and the provenance's input shape set.
        """
        from autoprune.model_dir import as_document
        from autoprune.policy import Policy
        from autoprune.policy_file import fingerprint

        if policy is None:
            policy = Policy.uniform(list(fingerprint(self.model))[:1], 0.0)
        document = copy.deepcopy(as_document(policy))
        inside = self._inside
        layers = {n: lp for n, lp in document.policy.layers.items() if not inside(n)}
        document.policy = dataclasses.replace(document.policy, layers=layers)
        document.fingerprint = {n: s for n, s in document.fingerprint.items() if not inside(n)}
        document.results[RESULTS_KEY] = self.to_dict()
        if self.input_shape:
            document.provenance["input_shape"] = list(self.input_shape)
            document.provenance["input_dtype"] = self.input_dtype
        return document

    def _inside(self, name: str) -> bool:
        return any(name == block or name.startswith(f"{block}.") for block in self.removed)


def prune_blocks(
    model: nn.Module,
    blocks: Sequence[str],
    *,
    example_input,
    history: Sequence[HistoryEntry | list] = (),
) -> DepthPruning:
    """A copy of ``model`` without ``blocks`` (each must be one :func:`removable_blocks` lists).

    ``model`` is not changed. ``history`` is the model's structured-pruning history
    so far (none of it may lie inside a removed block); it is passed on unchanged.
    """
    if isinstance(blocks, str) or not blocks:
        raise PruningError(
            f"The 'blocks' parameter must be a non-empty list of block names. Got {shorten(blocks)} instead."
        )
    seen = _checked(model, blocks, example_input)
    removed = tuple(dict.fromkeys(blocks))
    history = as_history(history)
    result = DepthPruning(model, removed, history=history)
    inside = [entry.unit for entry in history if result._inside(entry.unit)]
    if inside:
        raise PruningError(
            f"The structured history prunes '{shorten(inside[0], text=True)}' inside a block to "
            "remove; remove blocks first, then prune channels."
        )
    tuples = tuple(name for name in removed if seen[name].get("tuple"))
    pruned = skip(model, {name: name in tuples for name in removed})
    x = first_tensor(example_input) if not isinstance(example_input, dict) else None
    shape = (1, *x.shape[1:]) if isinstance(x, torch.Tensor) else ()
    dtype = str(x.dtype).removeprefix("torch.") if isinstance(x, torch.Tensor) else "float32"
    return DepthPruning(pruned.eval(), removed, tuples, shape, dtype, history)


def _checked(model: nn.Module, blocks: Sequence[str], example_input) -> dict[str, dict]:
    """What :func:`observe` saw of every candidate block, once each of ``blocks`` is known removable."""
    reasons, seen = _reasons(model, example_input)
    for name in blocks:
        reason = reasons.get(name, "the model has no such block in a Sequential or ModuleList")
        if reason:
            removable = ", ".join(n for n, r in reasons.items() if not r) or "none"
            raise PruningError(
                f"The block '{shorten(name, text=True)}' cannot be removed: {reason}. "
                f"Expected one of the removable blocks ({removable})."
            )
    return seen


def remove_policy_blocks(model: nn.Module, policy, example_input, *, check: bool = True):
    """``model``, in place, without the blocks ``policy.blocks`` names; and ``policy`` without
    the layers inside them (what prunes the rest of the model).

    ``check`` makes sure each block is one :func:`removable_blocks` lists (a forward
    pass per candidate block); the search, which proposes removable blocks only, skips it.

    Example:
        >>> import torch
        >>> from autoprune.policy import Policy
        >>> from autoprune.tasks.models import FashionResNet
        >>> model, x = FashionResNet(blocks=2).eval(), torch.zeros(1, 1, 28, 28)
        >>> policy = Policy.uniform(["layers.1.conv1", "stem.0"], 0.5, blocks=["layers.1"])
        >>> model, rest = remove_policy_blocks(model, policy, x)
        >>> type(model.layers[1]).__name__, list(rest.layers), model(x).shape
        ('SkippedBlock', ['stem.0'], torch.Size([1, 10]))
    """
    if not policy.blocks:
        return model, policy
    if check:
        seen = _checked(model, policy.blocks, example_input)
    else:
        found = candidates(model)
        blocks = {name: found[name] for name in policy.blocks if name in found}
        seen = observe(model, blocks, example_input)
    skip(model, {name: bool(seen.get(name, {}).get("tuple")) for name in policy.blocks}, copy=False)
    layers = {n: lp for n, lp in policy.layers.items() if not policy.inside_blocks(n)}
    return model, dataclasses.replace(policy, layers=layers)


def removed_blocks(source) -> dict:
    """The removed blocks a pruned model's policy records: ``{"removed": [...], "tuple_outputs": [...]}``.

    ``source`` is a pruned model's directory, its policy file, or a PolicyDocument;
    an empty dict when the policy records no depth pruning.
    """
    from autoprune.model_dir import as_document
    from autoprune.out_dir import POLICY_FILE

    if isinstance(source, (str, Path)) and Path(source).is_dir():
        source = Path(source) / POLICY_FILE
    recorded = as_document(source).results.get(RESULTS_KEY)
    if recorded is None:
        return {}
    removed = recorded.get("removed") if isinstance(recorded, dict) else None
    tuples = recorded.get("tuple_outputs", []) if isinstance(recorded, dict) else None
    if not (
        isinstance(removed, list)
        and removed
        and all(isinstance(n, str) and n for n in removed)
        and isinstance(tuples, list)
        and all(n in removed for n in tuples)
    ):
        raise PolicyError(
            f"results.{RESULTS_KEY}: must hold 'removed' (the names of the removed blocks) and "
            f"'tuple_outputs' (those of them that returned tuples). Got {shorten(recorded)} instead."
        )
    return {"removed": list(removed), "tuple_outputs": list(tuples)}


def remove_recorded_blocks(model: nn.Module, source, *, copy: bool = True) -> nn.Module:
    """``model`` without the blocks ``source``'s policy records as removed (``model`` itself if none)."""
    recorded = removed_blocks(source)
    if not recorded:
        return model
    tuples = set(recorded["tuple_outputs"])
    return skip(model, {name: name in tuples for name in recorded["removed"]}, copy=copy)
