"""The names, limits and declared constraints of every policy setting, and the checks they share.

Example:
    >>> parse_nm("2:4"), AMOUNT_FIELD["structured"]
    ((2, 4), 'channel_ratio')
    >>> parse_nm("4:2", layer="fc1")
    Traceback (most recent call last):
    ...
    autoprune.errors.PolicyError: Layer 'fc1': 'nm' needs 0 < N < M. Got '4:2' instead.
"""

from __future__ import annotations

from typing import Any

from autoprune._validation import (
    BOOL,
    MAX_SEED,
    Interval,
    Options,
    check_plain_data,
    shorten,
)
from autoprune.errors import PolicyError

GRANULARITIES = ("unstructured", "structured", "nm")
SCOPES = ("local", "global")
SCHEDULES = ("one-shot", "iterative", "gradual", "regularised")
CRITERIA = ("l1", "l2", "random", "taylor", "obd", "activation", "lamp", "wanda", "flap")
CRITERION_ALIASES = {"magnitude": "l1", "hessian": "obd", "gradient": "taylor"}
# The LayerPolicy field that holds a layer's amount, per granularity.
AMOUNT_FIELD = {"unstructured": "sparsity", "structured": "channel_ratio", "nm": "nm"}
# Upper bounds of the settings that cost time or memory in proportion (a policy asking for more is a
# mistake; ``rounds: 100000`` would prune for many minutes before any fine-tuning).
MAX_ROUNDS = 100  # iterative pruning rounds
MAX_EVERY = 100_000  # optimizer steps between gradual mask updates
MAX_STRENGTH = 100.0  # a regularised schedule's shrink, in mean unit norms
MAX_MIN_KEPT = 100_000  # units a global ranking leaves in each layer
MAX_ROUND_TO = 4096  # channel counts rounded to a multiple of this
MAX_BATCH_SIZE = 65_536  # fine-tuning batch size
MAX_EPOCHS = 1000  # fine-tuning epochs
MAX_PROVENANCE_ITEMS = 256  # entries of a policy file's provenance, nested ones included

# The declared constraints of every policy setting (None: not given).
FRACTION = Interval(float, 0, 1, closed="left")  # a sparsity or channel ratio: [0, 1)
LAYER_FIELDS = {
    "granularity": Options(GRANULARITIES),
    "criterion": Options(CRITERIA),
    "sparsity": [None, FRACTION],
    "channel_ratio": [None, FRACTION],
    "max_sparsity": [None, FRACTION],
}
SCHEDULE_FIELDS = {
    "rounds": Interval(int, 1, MAX_ROUNDS),
    "every": Interval(int, 1, MAX_EVERY),
    "end": Interval(float, 0, 1),
    "strength": Interval(float, 0, MAX_STRENGTH),
}
FINETUNE_FIELDS = {
    "epochs": Interval(float, 0, MAX_EPOCHS),
    "lr": Interval(float, 0, 1, closed="neither"),
    "batch_size": [None, Interval(int, 1, MAX_BATCH_SIZE)],
    "recalibrate_bn": BOOL,
    "distill_weight": Interval(float, 0, 1),
}
POLICY_FIELDS = {
    "scope": Options(SCOPES),
    "min_kept": Interval(int, 1, MAX_MIN_KEPT),
    "round_to": [None, Interval(int, 1, MAX_ROUND_TO)],
    "seed": Interval(int, -MAX_SEED, MAX_SEED, closed="left"),  # torch takes [-2**63, 2**64)
}


def printable(name: Any) -> str:
    r"""A name as text for a one-line message: control characters (newlines, ...) escaped, at most 200 characters.

    Example:
        >>> printable("fc1"), printable("fc\n1")
        ('fc1', 'fc\\n1')
    """
    return shorten(name, text=True)


def parse_nm(text: str, *, layer: str | None = None) -> tuple[int, int]:
    """``"2:4"`` -> ``(2, 4)``; N must be smaller than M. ``layer`` names the layer in errors."""
    where = f"Layer '{printable(layer)}': " if layer else ""
    try:
        n_text, m_text = str(text).split(":")
        n, m = int(n_text), int(m_text)
    except ValueError:
        raise PolicyError(
            f"{where}'nm' must look like 'N:M' (e.g. '2:4'). Got {shorten(text)} instead."
        ) from None
    if not (0 < n < m):
        raise PolicyError(f"{where}'nm' needs 0 < N < M. Got {shorten(text)} instead.")
    return n, m


def check_provenance(value, *, source: str = "policy") -> dict:
    """A policy file's ``provenance``: a small mapping of plain values, else PolicyError.

    Text keys; values are text, numbers, true/false, null, or lists and mappings of
    them, at most 3 levels deep, 256 entries and 1,000 characters a string.

    Example:
        >>> check_provenance({"task": "digits-mlp", "task_options": {}, "input_shape": [1, 64]})
        {'task': 'digits-mlp', 'task_options': {}, 'input_shape': [1, 64]}
        >>> check_provenance({"task": ["x"] * 1000}, source="p.yaml")
        Traceback (most recent call last):
        ...
        autoprune.errors.PolicyError: p.yaml: 'provenance' is too large: at most 256 entries in all (at 'provenance.task[254]'). Shorten it or leave it out.
    """
    try:
        return check_plain_data(
            "provenance", value, max_items=MAX_PROVENANCE_ITEMS, error=PolicyError
        )
    except PolicyError as exc:
        raise PolicyError(f"{source}: {exc}") from None
