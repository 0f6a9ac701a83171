"""The sensitivity cache: one small JSON file per (unit, amount) point, never pickle.

A point's file is named by a hash of everything that decides its numbers (the
run key: model class and weights, task identity, data; then the unit, the
amount, the criterion, the granularity and the seed) and holds those fields
next to the row. A read is plain JSON, checked field by field: a file that is
missing, truncated, edited, of another key or of unexpected types is a miss,
so the point is recomputed and the file rewritten (atomically). Nothing read
from the cache is ever executed.

Example:
    >>> import tempfile
    >>> cache = PointCache(tempfile.mkdtemp())
    >>> fields = point_fields("run", "fc1", 0.5, "l1", "unstructured", 0)
    >>> cache.load(fields) is None
    True
    >>> row = {"layer": "fc1", "sparsity": 0.5, "criterion": "l1", "granularity": "unstructured",
    ...        "metric": 0.75, "loss": float("nan"), "achieved": 0.5, "error": ""}
    >>> cache.store(fields, row)["metric"]
    0.75
    >>> cache.load(fields)["loss"]
    nan
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from pathlib import Path

FORMAT = "autoprune-sensitivity-point/1"
ROW_FIELDS = (
    "layer",
    "sparsity",
    "criterion",
    "granularity",
    "metric",
    "loss",
    "achieved",
    "error",
)
FLOAT_FIELDS = ("sparsity", "metric", "loss", "achieved")
MAX_FILE_BYTES = 1 << 20  # a point is a few hundred bytes: anything huge is not ours
_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def point_fields(
    run_key: str, unit: str, amount: float, criterion: str, granularity: str, seed: int
) -> dict:
    """What identifies one point: the fields its cache key is a hash of."""
    return {
        "run": str(run_key),
        "unit": str(unit),
        "amount": float(amount),
        "criterion": str(criterion),
        "granularity": str(granularity),
        "seed": int(seed),
    }


def normalise_row(row: dict) -> dict:
    """The row with plain Python floats and strings (as it reads back from the cache)."""
    return {name: (float if name in FLOAT_FIELDS else str)(row[name]) for name in ROW_FIELDS}


def _encode_float(value: float) -> float | str:
    return value if math.isfinite(value) else repr(value)  # nan, inf, -inf: valid JSON as text


def _decode_float(value) -> float | None:
    """A float from a JSON number or "nan"/"inf"/"-inf"; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        return _NON_FINITE.get(value)
    return None


def _decode_row(row, fields: dict) -> dict | None:
    """The row if every field has its type and it matches ``fields``; else None."""
    if not isinstance(row, dict) or set(row) != set(ROW_FIELDS):
        return None
    decoded = {
        name: _decode_float(row[name])
        if name in FLOAT_FIELDS
        else (row[name] if isinstance(row[name], str) else None)
        for name in ROW_FIELDS
    }
    if any(value is None for value in decoded.values()):
        return None
    expected = (fields["unit"], fields["amount"], fields["criterion"], fields["granularity"])
    found = (decoded["layer"], decoded["sparsity"], decoded["criterion"], decoded["granularity"])
    return decoded if found == expected else None


class PointCache:
    """JSON files under ``root``, one per point, keyed by :func:`point_fields`."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def path(self, fields: dict) -> Path:
        """Where the point of ``fields`` is stored."""
        digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()
        return self.root / "points" / digest[:2] / f"{digest[2:]}.json"

    def load(self, fields: dict) -> dict | None:
        """The cached row of ``fields``, or None when absent or not a valid point file."""
        path = self.path(fields)
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                return None
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):  # missing, unreadable, not UTF-8, not JSON
            return None
        if (
            not isinstance(document, dict)
            or document.get("format") != FORMAT
            or document.get("key") != fields
        ):
            return None
        return _decode_row(document.get("row"), fields)

    def store(self, fields: dict, row: dict) -> dict:
        """Write the point atomically; return the row as it reads back."""
        from autoprune._io import write_json

        row = normalise_row(row)
        encoded = {
            name: _encode_float(value) if name in FLOAT_FIELDS else value
            for name, value in row.items()
        }
        path = self.path(fields)
        try:
            write_json(path, {"format": FORMAT, "key": fields, "row": encoded})
        except OSError as exc:  # an unwritable cache costs the reuse, not the result
            warnings.warn(
                f"Could not write the sensitivity cache file {path}: {exc}. "
                "The point is computed but not cached.",
                stacklevel=2,
            )
        return row

    def count(self, points: list[dict]) -> int:
        """How many of ``points`` (their fields) are served from the cache."""
        return sum(self.load(fields) is not None for fields in points)
