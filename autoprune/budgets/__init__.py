"""Budgets: parse them, measure costs exactly, estimate them fast, predict latency.

Example:
    >>> from autoprune.budgets import parse_budgets
    >>> [str(b) for b in parse_budgets("params=0.1,latency=5ms")]
    ['params <= 0.1 x dense', 'latency <= 5 ms']
"""

from autoprune.budgets._budget import (
    KINDS,
    LATENCY_MARGIN,
    STRUCTURAL_KINDS,
    Budget,
    parse_budget,
    parse_budgets,
)
from autoprune.budgets._cost_model import CostModel
from autoprune.budgets._costs import Costs, measure_costs
from autoprune.budgets._latency_model import (
    LatencyModel,
    TableLatencyModel,
    fit_latency_models,
    load_or_sample,
    sample_latencies,
)
from autoprune.budgets._latency_table import (
    LatencyTable,
    load_or_measure_table,
    measure_table,
    model_widths,
)

__all__ = [
    "KINDS",
    "LATENCY_MARGIN",
    "STRUCTURAL_KINDS",
    "Budget",
    "CostModel",
    "Costs",
    "LatencyModel",
    "LatencyTable",
    "TableLatencyModel",
    "fit_latency_models",
    "load_or_measure_table",
    "load_or_sample",
    "measure_costs",
    "measure_table",
    "model_widths",
    "parse_budget",
    "parse_budgets",
    "sample_latencies",
]
