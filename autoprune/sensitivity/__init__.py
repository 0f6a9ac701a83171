"""Sensitivity analysis: per-layer curves that pre-rank layers and steer the search.

Example:
    >>> from autoprune.sensitivity import DEFAULT_GRID
    >>> DEFAULT_GRID
    (0.1, 0.3, 0.5, 0.7, 0.9)
"""

from autoprune.sensitivity._analysis import analyse_sensitivity
from autoprune.sensitivity._measurement import (
    DEFAULT_GRID,
    check_grid,
    sensitivity_units,
    weights_digest,
)
from autoprune.sensitivity._options import SensitivityOptions
from autoprune.sensitivity._plot import plot_sensitivity
from autoprune.sensitivity._result import Sensitivity
from autoprune.sensitivity._seeds import (
    greedy_allocation,
    sensitivity_allocation,
    uniform_allocation,
)

__all__ = [
    "DEFAULT_GRID",
    "Sensitivity",
    "SensitivityOptions",
    "analyse_sensitivity",
    "check_grid",
    "plot_sensitivity",
    "greedy_allocation",
    "sensitivity_allocation",
    "sensitivity_units",
    "uniform_allocation",
    "weights_digest",
]
