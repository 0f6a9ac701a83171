"""The run directory: where a search keeps ``run.json``, its journal, tables and final model.

A run directory belongs to one search: :func:`check_run_dir` refuses to mix in
a search with another setup, another study name or another storage, before
anything is written. ``run.json`` is rewritten atomically and keeps what
earlier sessions recorded (the accumulated search time).

Example:
    >>> default_run_dir("fashion-cnn", ["params=0.1"]).as_posix()
    'results/runs/fashion-cnn-params0.1'
"""

from __future__ import annotations

from pathlib import Path

from autoprune._io import read_json, write_json
from autoprune.budgets import parse_budgets
from autoprune.errors import RunError
from autoprune.search._prepare import PreparedStudy
from autoprune.search._setup import SearchSetup

RUNS_DIR = Path("results/runs")
JOURNAL_URL = "journal:study.journal"


def default_run_dir(task_name: str, budgets) -> Path:
    """``results/runs/<task>-<budgets>``."""
    slugs = "-".join(b.slug for b in parse_budgets(budgets))
    return RUNS_DIR / f"{task_name}-{slugs}"


def read_run(run_dir: Path) -> dict:
    """``run.json`` of a run directory (a one-line error when it is not one)."""
    path = Path(run_dir) / "run.json"
    if not path.is_file():
        raise RunError(f"{run_dir} is not a run directory: it has no run.json.")
    return read_json(path)


def check_run_dir(run_dir: Path, setup: SearchSetup, study_name: str, storage: str | None) -> None:
    """Refuse a run directory that is a file, or holds another search, study or storage."""
    if run_dir.exists() and not run_dir.is_dir():
        raise RunError(f"The run directory {run_dir} is a file; choose another --out.")
    path = run_dir / "run.json"
    if not path.is_file():
        return
    run = read_json(path)
    differences = SearchSetup.from_dict(run["setup"]).differences(setup)
    if run.get("study_name", study_name) != study_name:
        differences.append(f"study name ({run['study_name']!r}, not {study_name!r})")
    if run.get("storage", JOURNAL_URL) != (storage or JOURNAL_URL):
        differences.append("storage")
    if differences:
        raise RunError(
            f"{run_dir} holds a different search (it differs in: {', '.join(differences)}). "
            "Use another --out, or remove that directory to start over."
        )


def write_run_json(
    run_dir: Path,
    setup: SearchSetup,
    prepared: PreparedStudy,
    study_name: str,
    storage: str | None,
) -> None:
    """Write ``run.json``: the setup, the study's address and the preparation's figures."""
    path = run_dir / "run.json"
    earlier = read_json(path) if path.is_file() else {}
    kept = {k: earlier[k] for k in ("search_seconds", "limits") if k in earlier}
    write_json(
        path,
        {
            "setup": setup.to_dict(),
            "study_name": study_name,
            "storage": storage or JOURNAL_URL,
            **prepared.run_info(),
            **kept,
        },
    )


def record_run_time(run_dir: Path, limits: dict, seconds: float) -> float:
    """Add the absolute limits and this session's search time to ``run.json``; returns the total."""
    path = run_dir / "run.json"
    run = read_json(path)
    run["limits"] = limits
    run["search_seconds"] = round(run.get("search_seconds", 0.0) + seconds, 1)
    write_json(path, run)
    return run["search_seconds"]
