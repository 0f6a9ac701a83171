"""What a search may remove whole, besides widths: blocks (``depth``) and input features (``inputs``).

Example:
    >>> from autoprune.search._context import example_context
    >>> ctx = example_context()  # the quick space: neither depth nor inputs
    >>> searched_blocks(ctx), searched_features(ctx)
    ((), ())
"""

from __future__ import annotations

import copy

from autoprune.errors import PruningError, SearchSpaceError


def searched_blocks(ctx) -> tuple[str, ...]:
    """The blocks the search may remove whole (with ``depth`` in the space), in module order."""
    if not ctx.space.depth:
        return ()
    from autoprune.prune.depth import removable_blocks

    return removable_blocks(copy.deepcopy(ctx.dense), ctx.example_input)


def searched_features(ctx) -> tuple[int, ...]:
    """The model's input features, most important first (with ``inputs`` in the space)."""
    if not ctx.space.inputs:
        return ()
    from autoprune.prune.inputs import rank_inputs

    try:
        return rank_inputs(ctx.dense, ctx.task.train_data)
    except PruningError as exc:
        raise SearchSpaceError(
            f"inputs: the search space '{ctx.space.name}' drops input features, but {exc}"
        ) from exc
