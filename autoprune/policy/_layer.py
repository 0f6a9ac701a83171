"""How one layer is pruned: granularity, criterion and amount.

Example:
    >>> LayerPolicy(criterion="magnitude", sparsity=0.5).criterion
    'l1'
    >>> LayerPolicy(granularity="nm", nm="2:4").amount
    0.5
"""

from __future__ import annotations

from dataclasses import dataclass

from autoprune._validation import validate_fields
from autoprune.errors import PolicyError
from autoprune.policy._constraints import (
    AMOUNT_FIELD,
    CRITERION_ALIASES,
    LAYER_FIELDS,
    parse_nm,
)


@dataclass(frozen=True)
class LayerPolicy:
    """How one layer is pruned (see :mod:`autoprune.policy` for the meaning of each amount)."""

    granularity: str = "unstructured"
    criterion: str = "l1"
    sparsity: float | None = None
    channel_ratio: float | None = None
    nm: str | None = None
    max_sparsity: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.criterion, str):
            criterion = CRITERION_ALIASES.get(self.criterion, self.criterion)
            object.__setattr__(self, "criterion", criterion)
        validate_fields(self, LAYER_FIELDS, error=PolicyError)
        if self.nm is not None:
            parse_nm(self.nm)

    @property
    def amount(self) -> float:
        """The requested amount in this layer's own unit (sparsity, channel ratio, or 1 - N/M)."""
        if self.granularity == "nm":
            n, m = parse_nm(self.nm or "")
            return 1.0 - n / m
        value = getattr(self, AMOUNT_FIELD[self.granularity])
        return 0.0 if value is None else value
