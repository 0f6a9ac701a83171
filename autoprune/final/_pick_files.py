"""Where a pick goes: its record (``pick.json``), the output directory check and the publishing rename.

Example:
    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp())
    >>> check_pick_out(out) == out
    True
    >>> _finite({"val_metric": float("nan"), "trials": [1.5]})
    {'val_metric': None, 'trials': [1.5]}
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from autoprune._echo import shorten
from autoprune._io import read_json, write_json
from autoprune.errors import AutopruneError, RunError
from autoprune.final._summary import FinalSummary
from autoprune.out_dir import POLICY_FILE, WEIGHTS_FILE

PICK_FILE = "pick.json"
PICK_FILES = (POLICY_FILE, WEIGHTS_FILE, PICK_FILE)  # what a pick writes, and all it writes
PICK_STAGING = ".pick-"


@dataclass(frozen=True)
class Pick:
    """A picked trial's final model: where it is, which trial, why (``budget``), what was measured.

    ``recover_of`` is the candidate trial a recovery trial trained back (None for a candidate).
    """

    out: Path
    run_dir: Path
    trial: int
    budget: str | None
    summary: FinalSummary
    recover_of: int | None = None

    def to_dict(self) -> dict:
        """Plain data in the layout of ``pick.json``: the summary plus a ``pick`` entry."""
        picked = {
            "run_dir": str(self.run_dir),
            "trial": self.trial,
            "budget": self.budget,
            "recover_of": self.recover_of,
        }
        return {"pick": picked, **self.summary.to_dict()}


def read_pick(directory: str | Path) -> Pick:
    """The :class:`Pick` saved in ``directory`` (its ``pick.json``)."""
    directory = Path(directory)
    path = directory / PICK_FILE
    data = read_json(path)
    picked = data.get("pick") if isinstance(data, dict) else None
    if not isinstance(picked, dict) or not {"run_dir", "trial", "budget"} <= set(picked):
        raise RunError(f"{path} has no valid 'pick' entry: the file is damaged (pick again).")
    try:
        summary = FinalSummary.from_dict(data)
    except RunError as exc:
        raise RunError(f"{path}: {exc}") from exc
    recover_of = picked.get("recover_of")
    return Pick(
        directory,
        Path(picked["run_dir"]),
        int(picked["trial"]),
        picked["budget"],
        summary,
        None if recover_of is None else int(recover_of),
    )


def check_pick_out(out: str | Path) -> Path:
    """``out`` as a Path if a pick may write there: new, empty, or an earlier pick's output.

    Example:
        >>> import tempfile
        >>> out = Path(tempfile.mkdtemp())
        >>> check_pick_out(out) == out
        True
        >>> _ = (out / "notes.txt").write_text("mine")
        >>> try:
        ...     check_pick_out(out)
        ... except AutopruneError as exc:
        ...     "is not the output of an earlier 'autoprune pick'" in str(exc)
        True
    """
    out = Path(out)
    shown = shorten(str(out), text=True)
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise AutopruneError(
            f"The output path {shown} exists and is not a directory; autoprune never replaces it. "
            "Choose another --out."
        )
    entries = sorted(out.iterdir()) if out.is_dir() else []
    ours = (out / PICK_FILE).is_file() and all(
        e.name in PICK_FILES and e.is_file() and not e.is_symlink() for e in entries
    )
    if entries and not ours:
        names = [e.name for e in entries]
        listed = ", ".join(shorten(n, 60, text=True) for n in names[:3])
        listed += f" and {len(names) - 3} more" if len(names) > 3 else ""
        raise AutopruneError(
            f"The output directory {shown} is not empty and is not the output of an earlier "
            f"'autoprune pick' (it holds {listed}); a pick replaces only its own output. "
            "Choose another --out."
        )
    return out


def publish_pick(run_dir: Path, staging: Path, out: Path) -> None:
    """Rename ``staging`` to ``out``; an earlier pick there is replaced whole, under the run's lock."""
    from autoprune.search._lock import FileLock

    with FileLock(run_dir / ".pick.lock"):
        check_pick_out(out)  # again: nothing foreign came in while the model was fine-tuned
        old = None
        if out.is_dir():
            old = staging.with_name(staging.name + "-old")
            out.rename(old)
        staging.rename(out)
    if old is not None:  # an earlier pick's files only (checked above)
        for entry in old.iterdir():
            entry.unlink()
        old.rmdir()


def write_pick(staging: Path, chosen: Pick) -> None:
    """Write ``chosen`` to ``pick.json`` in ``staging`` (strict JSON: NaN as null)."""
    write_json(staging / PICK_FILE, _finite(chosen.to_dict()))


def _finite(data):
    """``data`` with NaN numbers (a trial never validated) as None: ``pick.json`` stays strict JSON."""
    if isinstance(data, float) and math.isnan(data):
        return None
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_finite(v) for v in data]
    return data


def remove_staging(staging: Path) -> None:
    """Remove ``staging`` if it is this process's own pick staging directory."""
    import shutil

    if staging.is_dir() and staging.name.startswith(PICK_STAGING + str(os.getpid())):
        shutil.rmtree(staging, ignore_errors=True)
