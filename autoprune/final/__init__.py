"""The final model of a search: fine-tune the shortlist fully, choose on validation, test once, save.

1. the front's candidates are shortlisted by the selection rule (under a
   latency budget, among those whose measured latency meets it, the most
   accurate one narrowed until it measures under when it is just over);
2. each is pruned from the dense model and fine-tuned for the space's
   ``final_epochs``; the rule chooses among them on their *validation* metric.
   A global structured ranking is first pinned to the channel ratios it reaches
   on the dense model, so the shape whose costs were checked is the shape that
   gets fine-tuned and shipped;
3. only then is the test split evaluated, once, for the chosen model;
4. the policy file and the weights are written to a staging directory of this
   process's own and renamed to ``final/`` under a lock (a previous ``final/``
   is kept as ``final-<time>/``); the model is reloaded from those files and
   measured again: parameters, MACs, bytes on disk and latency (median and
   spread, side by side with the dense model), each budget checked.

:func:`finalize` returns a :class:`FinalSummary`; ``final/final.json`` is its
serialisation, read back by :func:`read_final` (None before the first finalize).

:func:`pick` makes another point of the run's trials a final model the same way,
without searching again: a trial by number, or the best trial under a tighter
budget; it goes to ``picks/trial-N/`` with a ``pick.json`` (:func:`read_pick`).

Example:
    >>> import tempfile
    >>> read_final(tempfile.mkdtemp()) is None
    True
    >>> RULES
    ('best', 'smallest', 'knee')
"""

from __future__ import annotations

from autoprune.final._choose import export_tables, measure_front_latency
from autoprune.final._finalize import finalize
from autoprune.final._pick import Pick, pick, read_pick
from autoprune.final._publish import STAGING_PREFIX, staging_dir
from autoprune.final._rules import RULES, choose, shortlist
from autoprune.final._summary import (
    BudgetCheck,
    Candidate,
    DenseRow,
    FinalRow,
    FinalSummary,
    FrontLatency,
    LatencyStats,
    read_final,
)

__all__ = [
    "RULES",
    "STAGING_PREFIX",
    "BudgetCheck",
    "Candidate",
    "DenseRow",
    "FinalRow",
    "FinalSummary",
    "FrontLatency",
    "LatencyStats",
    "Pick",
    "choose",
    "export_tables",
    "finalize",
    "measure_front_latency",
    "pick",
    "read_final",
    "read_pick",
    "shortlist",
    "staging_dir",
]
