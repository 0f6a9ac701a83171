"""The Policy: what to prune, how much, how, on which schedule, and how to fine-tune.

A policy is the one hand-off between search time and production time. Per
layer it says the granularity, the criterion and the amount:

* ``unstructured``: ``sparsity`` = fraction of the layer's weight elements removed;
* ``structured``: ``channel_ratio`` = fraction of its output channels (neurons)
  removed, physically; the weight sparsity that results is larger (the next
  layer loses inputs too) and is reported separately;
* ``nm``: ``nm = "N:M"``, keep N of every M consecutive weights along the input
  dimension (sparsity 1 - N/M).

With ``scope="global"`` the per-layer amounts are not given: one ranking across
the listed layers removes ``global_sparsity`` of their weights (unstructured) or
channels (structured), never more than a layer's ``max_sparsity`` and never
leaving fewer than ``min_kept`` units in a layer.

Where things live: :mod:`._constraints` (the names, limits and declared
constraints of every setting), :mod:`._layer` (:class:`LayerPolicy`),
:mod:`._recipe` (:class:`ScheduleSpec`, :class:`FinetuneRecipe`) and
:mod:`._policy` (:class:`Policy`).

Example:
    >>> p = Policy.uniform(["fc1", "fc2"], 0.5)
    >>> p.layers["fc1"].sparsity, p.scope, p.schedule.name
    (0.5, 'local', 'one-shot')
    >>> Policy.from_dict(p.to_dict()) == p
    True
"""

from __future__ import annotations

from autoprune.policy._constraints import (
    AMOUNT_FIELD,
    CRITERIA,
    CRITERION_ALIASES,
    FINETUNE_FIELDS,
    FRACTION,
    GRANULARITIES,
    LAYER_FIELDS,
    MAX_BATCH_SIZE,
    MAX_EPOCHS,
    MAX_EVERY,
    MAX_MIN_KEPT,
    MAX_PROVENANCE_ITEMS,
    MAX_ROUND_TO,
    MAX_ROUNDS,
    POLICY_FIELDS,
    SCHEDULE_FIELDS,
    SCHEDULES,
    SCOPES,
    check_provenance,
    parse_nm,
    printable,
)
from autoprune.policy._layer import LayerPolicy
from autoprune.policy._policy import Policy
from autoprune.policy._recipe import FinetuneRecipe, ScheduleSpec

__all__ = [
    "AMOUNT_FIELD",
    "CRITERIA",
    "CRITERION_ALIASES",
    "FINETUNE_FIELDS",
    "FRACTION",
    "GRANULARITIES",
    "LAYER_FIELDS",
    "MAX_BATCH_SIZE",
    "MAX_EPOCHS",
    "MAX_EVERY",
    "MAX_MIN_KEPT",
    "MAX_PROVENANCE_ITEMS",
    "MAX_ROUNDS",
    "MAX_ROUND_TO",
    "POLICY_FIELDS",
    "SCHEDULES",
    "SCHEDULE_FIELDS",
    "SCOPES",
    "FinetuneRecipe",
    "LayerPolicy",
    "Policy",
    "ScheduleSpec",
    "check_provenance",
    "parse_nm",
    "printable",
]
