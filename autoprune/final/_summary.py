"""What the final model step measured: a :class:`FinalSummary`, saved as ``final/final.json``.

The summary is typed data; ``final.json`` is its serialisation
(:meth:`FinalSummary.to_dict`), read back with :meth:`FinalSummary.from_dict`
(or :func:`read_final` for a run directory). A field missing or of the wrong
kind in the file is a :class:`~autoprune.errors.RunError` naming it.

Example:
    >>> check = BudgetCheck("params <= 0.1 x dense", "params", 35759, 42164.2, True)
    >>> check.to_dict()["met"], BudgetCheck.from_dict(check.to_dict()) == check
    (True, True)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from autoprune._io import read_json
from autoprune.errors import RunError


def _pick(cls, data: Any, where: str, optional: tuple[str, ...] = ()) -> dict:
    """The values of ``cls``'s fields in ``data``; a missing required one is a RunError."""
    if not isinstance(data, dict):
        raise RunError(f"The '{where}' entry must be a mapping. Got {type(data).__name__} instead.")
    out = {}
    for f in fields(cls):
        if f.name in data:
            out[f.name] = data[f.name]
        elif f.name not in optional:
            raise RunError(
                f"The '{where}' entry has no '{f.name}' field: the file is damaged "
                "(write it again with 'autoprune report RUN_DIR --finalize')."
            )
    return out


def _list(data: Any, where: str) -> list:
    if not isinstance(data, list):
        raise RunError(f"The '{where}' entry must be a list. Got {type(data).__name__} instead.")
    return data


@dataclass(frozen=True)
class LatencyStats:
    """Median latency over interleaved rounds and its spread (milliseconds)."""

    median_ms: float
    min_ms: float
    max_ms: float
    rounds: int
    batch_size: int
    threads: int

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, where: str = "latency") -> LatencyStats:
        return cls(**_pick(cls, data, where))


@dataclass(frozen=True)
class Candidate:
    """A shortlisted trial after its full training (``pinned``: None in files older than pinning).

    ``start`` says where that training began: ``trained`` (the dense model, pruned
    and fine-tuned) or ``scratch`` (a fresh initialisation trained with the policy,
    the space's ``finetune.from_scratch``).
    """

    number: int
    val_metric: float
    search_val_metric: float
    cost: float
    pinned: bool | None = None
    start: str = "trained"

    def to_dict(self) -> dict:
        out = asdict(self)
        if self.pinned is None:
            del out["pinned"]
        return out

    @classmethod
    def from_dict(cls, data: Any, where: str = "candidates") -> Candidate:
        return cls(**_pick(cls, data, where, optional=("pinned", "start")))


@dataclass(frozen=True)
class FrontLatency:
    """A front candidate's latency: estimated during the search, measured after it.

    ``tightened``: the share its kept widths were narrowed by to measure under the
    budget (:mod:`autoprune.final._tighten`; 0: as the search left it).
    """

    number: int
    estimated_ms: float
    measured_ms: float
    measured_vs_dense: float
    limit_ms: float
    met: bool
    tightened: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, where: str = "front_latency") -> FrontLatency:
        return cls(**_pick(cls, data, where, optional=("tightened",)))


@dataclass(frozen=True)
class BudgetCheck:
    """One budget checked on the saved final model."""

    budget: str
    kind: str
    value: float
    limit: float
    met: bool

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, where: str = "budget_checks") -> BudgetCheck:
        return cls(**_pick(cls, data, where))


@dataclass(frozen=True)
class DenseRow:
    """The dense model's metrics and costs, the reference of every comparison."""

    val_metric: float
    test_metric: float
    params: int
    macs: int
    bytes: int
    latency: LatencyStats

    def to_dict(self) -> dict:
        return {**asdict(self), "latency": self.latency.to_dict()}

    @classmethod
    def from_dict(cls, data: Any, where: str = "dense") -> DenseRow:
        values = _pick(cls, data, where)
        values["latency"] = LatencyStats.from_dict(values["latency"], f"{where}.latency")
        return cls(**values)


@dataclass(frozen=True)
class FinalRow:
    """The saved final model's costs, measured from its files, and its per-layer table."""

    params: int
    macs: int
    bytes: int
    latency: LatencyStats
    layers: list[dict]

    def to_dict(self) -> dict:
        return {**asdict(self), "latency": self.latency.to_dict()}

    @classmethod
    def from_dict(cls, data: Any, where: str = "final") -> FinalRow:
        values = _pick(cls, data, where)
        values["latency"] = LatencyStats.from_dict(values["latency"], f"{where}.latency")
        values["layers"] = _list(values["layers"], f"{where}.layers")
        return cls(**values)


@dataclass(frozen=True)
class FinalSummary:
    """Everything the final model step chose and measured (``final.json`` is its serialisation)."""

    chosen_trial: int
    front_latency: list[FrontLatency] | None
    rule: str
    tolerance: float
    final_epochs: float
    candidates: list[Candidate]
    val_metric: float
    test_metric: float
    test_loss: float
    dense: DenseRow
    final: FinalRow
    budget_checks: list[BudgetCheck]
    finalize_seconds: float
    previous_final: str | None
    metric: str
    chosen_start: str = "trained"
    #: the input features the final model reads (layer, features, kept, names); empty: all
    inputs: dict = field(default_factory=dict)

    @property
    def from_scratch(self) -> bool:
        """Whether the shortlisted policies were also trained from scratch (``finetune.from_scratch``)."""
        return any(c.start == "scratch" for c in self.candidates)

    @property
    def chosen(self) -> Candidate:
        """The chosen trial's candidate row."""
        return next(
            c
            for c in self.candidates
            if c.number == self.chosen_trial and c.start == self.chosen_start
        )

    def to_dict(self) -> dict:
        """Plain data in the layout of ``final.json``."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        if self.front_latency is not None:
            out["front_latency"] = [r.to_dict() for r in self.front_latency]
        out["candidates"] = [c.to_dict() for c in self.candidates]
        out["dense"] = self.dense.to_dict()
        out["final"] = self.final.to_dict()
        out["budget_checks"] = [c.to_dict() for c in self.budget_checks]
        return out

    @classmethod
    def from_dict(cls, data: Any) -> FinalSummary:
        """Read back :meth:`to_dict`'s data (``front_latency`` and ``previous_final`` may be absent)."""
        optional = ("front_latency", "previous_final", "chosen_start", "inputs")
        values = _pick(cls, data, "final.json", optional=optional)
        rows = values.get("front_latency")
        values["front_latency"] = (
            None
            if rows is None
            else [FrontLatency.from_dict(r) for r in _list(rows, "front_latency")]
        )
        values.setdefault("previous_final", None)
        values["candidates"] = [
            Candidate.from_dict(c) for c in _list(values["candidates"], "candidates")
        ]
        values["dense"] = DenseRow.from_dict(values["dense"])
        values["final"] = FinalRow.from_dict(values["final"])
        values["budget_checks"] = [
            BudgetCheck.from_dict(c) for c in _list(values["budget_checks"], "budget_checks")
        ]
        return cls(**values)


def read_final(run_dir: str | Path) -> FinalSummary | None:
    """The run's ``final/final.json`` as a :class:`FinalSummary`, or None when there is none yet."""
    path = Path(run_dir) / "final" / "final.json"
    if not path.is_file():
        return None
    data = read_json(path)
    try:
        return FinalSummary.from_dict(data)
    except RunError as exc:
        raise RunError(f"{path}: {exc}") from exc
