"""The base of every compared method: one row kind of the benchmark tables.

A method has a short ``name``, a ``series`` (``reference``, ``unstructured``,
``structured`` or ``search``), the budget kinds it can meet, and one method,
:meth:`Method.run`, that returns the pruned and fine-tuned model (plus what is
worth recording: the knob it matched, the number of trials). ``fixed`` methods
(the dense model, the seed study's recipes) ignore the budget and appear as
reference points in every table.

Example:
    >>> from autoprune.budgets import parse_budget
    >>> class Masks(Method):
    ...     name, series = "masks", "unstructured"
    >>> Masks().unsupported(None, parse_budget("latency=0.5"))
    'cannot meet latency budgets (sparse weights do not make dense CPU kernels faster)'
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from autoprune.budgets import Budget

MASK_KINDS = ("params", "macs", "size")
ALL_KINDS = ("params", "macs", "size", "latency")
SPARSE_IS_NOT_FASTER = "sparse weights do not make dense CPU kernels faster"


@dataclass
class Outcome:
    """A method's finished model and what it wants recorded (knob, probes, trials, notes)."""

    model: nn.Module
    info: dict = field(default_factory=dict)


class Method:
    """One compared method (see the module docstring); subclasses set the class attributes."""

    name: str = ""
    series: str = ""
    description: str = ""
    fixed: bool = False
    kinds: tuple[str, ...] = MASK_KINDS
    structured: bool = False

    def unsupported(self, ctx, budget: Budget | None) -> str | None:
        """Why this method cannot give a row for ``budget`` (None when it can)."""
        if budget is not None and budget.kind not in self.kinds:
            why = f" ({SPARSE_IS_NOT_FASTER})" if budget.kind == "latency" else ""
            return f"cannot meet {budget.kind} budgets{why}"
        if self.structured and ctx is not None and not ctx.structured_layers:
            return f"the model cannot be pruned structurally: {ctx.structured_note or 'no channel group'}"
        return None

    def run(self, ctx, budget: Budget | None, seed: int) -> Outcome:
        """The pruned and fine-tuned model for ``budget`` (None for fixed methods) and ``seed``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"
