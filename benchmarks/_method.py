"""The base of every compared method: one row kind of the benchmark tables.

A method has a short ``name``, a ``series`` (``reference``, ``unstructured``,
``structured`` or ``search``), the budget kinds it can meet, and one method,
:meth:`Method.run`, that returns the pruned model, not trained (plus what is
worth recording: the knob it matched, the number of trials). The runner takes
every pruned model through the same two regimes (one-shot, with recovery).
``fixed`` methods (the dense model) ignore the budget and appear as reference
points in every table.

Example:
    >>> from autoprune.budgets import parse_budget
    >>> class Masks(Method):
    ...     name, series = "masks", "unstructured"
    >>> Masks().unsupported(None, parse_budget("macs=0.5"))
    'cannot meet macs budgets (zeroed weights save no MACs or time on dense kernels)'
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from autoprune.budgets import Budget

MASK_KINDS = ("params", "size")
ALL_KINDS = ("params", "macs", "size", "latency")
SPARSE_IS_NOT_FASTER = "zeroed weights save no MACs or time on dense kernels"


@dataclass
class Outcome:
    """A method's finished model and what it wants recorded (knob, probes, trials, notes).

    ``oneshot_model``: another model for the one-shot regime (a search's best
    one-shot candidate, when its pick for recovery is another), with what to
    record about it in ``oneshot_info``; None: ``model`` serves both regimes.
    """

    model: nn.Module
    info: dict = field(default_factory=dict)
    oneshot_model: nn.Module | None = None
    oneshot_info: dict = field(default_factory=dict)


class Method:
    """One compared method (see the module docstring); subclasses set the class attributes."""

    name: str = ""
    series: str = ""
    description: str = ""
    fixed: bool = False
    kinds: tuple[str, ...] = MASK_KINDS
    structured: bool = False
    cnn_only: str = ""  # why the method gives no row on a transformer (empty: it runs there)
    transformer_only: bool = False
    # the pruned model does not depend on the seed (one match serves every seed)
    seed_free: bool = False
    kinds_note: str = ""  # why a structured method meets only its ``kinds``

    def unsupported(self, ctx, budget: Budget | None) -> str | None:
        """Why this method cannot give a row for ``budget`` (None when it can)."""
        if budget is not None and budget.kind not in self.kinds:
            note = self.kinds_note or (SPARSE_IS_NOT_FASTER if budget.needs_structure else "")
            why = f" ({note})" if note else ""
            return f"cannot meet {budget.kind} budgets{why}"
        if ctx is not None and self.cnn_only and ctx.has_heads:
            return self.cnn_only
        if ctx is not None and self.transformer_only and not ctx.has_heads:
            return "a transformer method (attention heads and neurons)"
        if self.structured and ctx is not None and not ctx.structured_layers:
            return f"the model cannot be pruned structurally: {ctx.structured_note or 'no channel group'}"
        return None

    def run(self, ctx, budget: Budget | None, seed: int) -> Outcome:
        """The pruned (not trained) model for ``budget`` (None for fixed methods) and ``seed``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"
