"""The setup of a search: what a worker needs to join it, stored with the study.

A :class:`SearchSetup` is plain data (task spec, budgets, space, seed, trial
count, latency conditions). It is written to the run directory's ``run.json``
and to the study's user attributes, so ``autoprune worker`` and a resumed run
rebuild exactly the same search from the storage alone.

Example:
    >>> s = SearchSetup(task="digits-mlp", budgets=["params=0.5"], space={}, n_trials=4)
    >>> SearchSetup.from_dict(s.to_dict()) == s
    True
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from autoprune.errors import RunError


@dataclass(frozen=True)
class SearchSetup:
    """Plain-data description of one search."""

    task: str
    budgets: list[str]
    space: dict
    n_trials: int
    task_options: dict = field(default_factory=dict)
    seed: int = 0
    sensitivity: bool = True
    latency_batch_size: int = 64
    latency_threads: int = 1
    max_failures: int | None = None
    device: str = "cpu"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> SearchSetup:
        if not isinstance(data, dict):
            raise RunError(f"A search setup must be a mapping. Got {type(data).__name__} instead.")
        known = {f.name for f in fields(cls)}
        missing = sorted({"task", "budgets", "space", "n_trials"} - set(data))
        if missing:
            raise RunError(f"The search setup is missing {', '.join(missing)}.")
        return cls(**{k: v for k, v in data.items() if k in known})

    def differences(self, other: SearchSetup) -> list[str]:
        """Fields in which two setups differ (the trial count and failure allowance may change on resume)."""
        free = {"n_trials", "max_failures"}
        return [
            f.name
            for f in fields(self)
            if f.name not in free and getattr(self, f.name) != getattr(other, f.name)
        ]

    @property
    def failure_allowance(self) -> int:
        """Failed trials replaced before the study gives up on reaching ``n_trials``."""
        return self.n_trials if self.max_failures is None else self.max_failures
