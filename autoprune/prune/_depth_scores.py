"""Block importance: the loss increase when a block is skipped, and how little it changes its input."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from autoprune._echo import shorten
from autoprune.errors import PruningError
from autoprune.prune._depth_find import first_tensor, observe, run, skip


@dataclass(frozen=True)
class BlockScore:
    """How much a block matters: ``loss`` increase when skipped, ``cosine`` = 1 - cos(input, output)."""

    loss: float
    cosine: float


def _batches(data, batches: int) -> list[tuple]:
    taken = []
    for batch in data:
        if len(taken) == batches:
            break
        if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
            raise PruningError(
                f"The 'data' batches must be (inputs, targets) pairs. Got {shorten(batch)} instead."
            )
        taken.append(tuple(batch))
    if not taken:
        raise PruningError("The 'data' for block scores must hold at least one batch.")
    return taken


def _mean_loss(model: nn.Module, batches: list[tuple], loss_fn: Callable) -> float:
    total = 0.0
    for x, y in batches:
        total += float(loss_fn(first_tensor(run(model, x)), y))
    return total / len(batches)


def _cosine_distance(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, int]:
    """The sum of 1 - cosine similarity per token (3-D: batch, tokens, features) or per sample, and the count."""
    if x.dim() == 3:
        x, y = x.reshape(-1, x.shape[-1]), y.reshape(-1, y.shape[-1])
    else:
        x, y = x.reshape(len(x), -1), y.reshape(len(y), -1)
    similarity = torch.nn.functional.cosine_similarity(x.float(), y.float(), dim=1, eps=1e-12)
    return (1.0 - similarity).sum(), len(similarity)


def block_scores(
    model: nn.Module, blocks: Sequence[str], data: Iterable, loss_fn: Callable, *, batches: int = 4
) -> dict[str, BlockScore]:
    """A :class:`BlockScore` per block, from the first ``batches`` (inputs, targets) pairs of ``data``.

    ``loss`` is the mean loss with the block skipped minus the model's own (higher:
    the block matters more); ``cosine`` is ``1 - mean cosine similarity`` of the
    block's input and output, per token for 3-D hidden states, else per sample
    (near 0: the block hardly changes its input).
    """
    taken = _batches(data, batches)
    modules = dict(model.named_modules())
    missing = [name for name in blocks if name not in modules]
    if missing:
        raise PruningError(f"The model has no block '{shorten(missing[0], text=True)}' to score.")
    was_training = model.training
    model.eval()
    try:
        sums = {name: [0.0, 0] for name in blocks}

        def hook(name):
            def record(_module, args, output):
                distance, count = _cosine_distance(args[0], first_tensor(output))
                sums[name][0] += float(distance)
                sums[name][1] += count

            return record

        handles = [modules[name].register_forward_hook(hook(name)) for name in blocks]
        try:
            base = _mean_loss(model, taken, loss_fn)
        finally:
            for handle in handles:
                handle.remove()
        scores = {}
        for name in blocks:
            tuple_output = _returns_tuple(model, modules[name], taken[0][0])
            skipped = skip(model, {name: tuple_output})
            loss = _mean_loss(skipped, taken, loss_fn) - base
            scores[name] = BlockScore(loss, sums[name][0] / max(1, sums[name][1]))
        return scores
    finally:
        model.train(was_training)


def _returns_tuple(model: nn.Module, block: nn.Module, example_input) -> bool:
    return bool(observe(model, {"block": block}, example_input)["block"].get("tuple"))
