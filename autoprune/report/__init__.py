"""The report of a run directory: its data computed from the run's files, then rendered.

:func:`collect_report_data` computes every number (a :class:`ReportData`, no
prose, no drawing); :func:`build_report` draws the figures and writes
``report.md`` and ``report.html``. The final model itself is made by
:func:`autoprune.final.finalize`; the report only reads its ``final.json``.

Example:
    >>> import pandas as pd
    >>> t = pd.DataFrame({"number": [0, 1], "state": ["COMPLETE"] * 2, "feasible": [True, False],
    ...                   "fidelity": ["recovered", "rejected"], "val_metric": [0.9, 0.95],
    ...                   "cost": [0.5, 1.3]})
    >>> list(classify(t)["category"])
    ['front', 'infeasible']
"""

from autoprune.report._build import build_report, report_blocks
from autoprune.report._data import (
    Comparison,
    FailedTrial,
    ParetoData,
    ReportData,
    RunInfo,
    SensitivitySection,
    collect_report_data,
)
from autoprune.report._figures import Figures, draw_figures
from autoprune.report._front import classify, seed_rows

__all__ = [
    "Comparison",
    "FailedTrial",
    "Figures",
    "ParetoData",
    "ReportData",
    "RunInfo",
    "SensitivitySection",
    "build_report",
    "classify",
    "collect_report_data",
    "draw_figures",
    "report_blocks",
    "seed_rows",
]
