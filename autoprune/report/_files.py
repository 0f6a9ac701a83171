"""Read a run directory's files as the report needs them: ``run.json`` and the CSV tables.

Example:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "t.csv").write_text("number,seed,feasible\\n0,,True\\n1,uniform:structured,False\\n")
    >>> t = read_table(d / "t.csv")
    >>> list(t.seed), list(t.feasible), read_table(d / "absent.csv") is None
    (['', 'uniform:structured'], [True, False], True)
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from autoprune._io import read_json
from autoprune.errors import RunError

TEXT_COLUMNS = (
    "seed",
    "fail_reason",
    "fidelity",
    "provenance",
    "granularity",
    "scope",
    "criterion",
)


def read_table(path: Path) -> pd.DataFrame | None:
    """A CSV table with its text columns as strings ('' for empty); None when the file is absent."""
    if not path.is_file():
        return None
    try:
        frame = pd.read_csv(path, keep_default_na=True)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    for column in TEXT_COLUMNS:
        if column in frame:
            frame[column] = (
                frame[column].astype(object).where(frame[column].notna(), "").astype(str)
            )
    if "feasible" in frame:
        frame["feasible"] = frame["feasible"].astype(bool)
    return frame


def read_run(run_dir: Path) -> dict:
    """The run's ``run.json``; a RunError when ``run_dir`` is not a run directory."""
    path = run_dir / "run.json"
    if not path.is_file():
        raise RunError(
            f"{run_dir} is not a run directory: it has no run.json (start one with 'autoprune search')."
        )
    return read_json(path)
