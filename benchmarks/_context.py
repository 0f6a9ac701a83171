"""What every method of one benchmark task shares: the dense checkpoint, the settings, the two regimes.

:class:`BenchTask` loads the dense model once (``dense_model(task, seed=0)``:
every method and every seed starts from this checkpoint), knows which layers
each kind of method prunes, and takes a method's pruned model through the two
regimes the same way for every row:

* *one-shot*: BatchNorm statistics recalibrated on at most
  ``calibration_images`` training images (seeded), no training; then measured;
* *with recovery*: the one-shot model trained back with
  :func:`autoprune.training.recover` and the run's :class:`RecoverySettings`
  (the same epochs, optimiser, learning-rate rule and distillation from the
  dense model for every method); then its test metric measured again.

Costs are measured once (recovery keeps zeros at zero and shapes as they are):
non-zero parameters, MACs as dense kernels run them, sparse MACs, FLOPs
(FlopCounterMode), bytes on disk, and latency side by side with the dense model
for structured rows and latency budgets. Budget fractions are of the dense model.

Example:
    >>> RunSettings().recovery(seed=3).seed
    3
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from torch import nn

from autoprune.budgets import Budget, measure_costs
from autoprune.errors import PruningError
from autoprune.introspect import prunable_layers, side_by_side_latency
from autoprune.policy import Policy
from autoprune.prune import (
    Calibration,
    Pruner,
    collect_statistics,
    statistics_needed,
    structured_units,
)
from autoprune.sensitivity import weights_digest
from autoprune.tasks import Task
from autoprune.training import (
    RecoverySettings,
    dense_model,
    evaluate,
    recalibrate_batchnorm,
    recover,
)
from benchmarks._matching import Match, bisect_knob

COST_FIELD = {"params": "params", "macs": "macs", "size": "bytes"}
# a latency match aims this far under the limit: measured latency is noisy, the final check is not lenient
LATENCY_MARGIN = 0.97
CALIBRATION_BATCH = 125


@dataclass(frozen=True)
class RunSettings:
    """Settings of one task's benchmark run; stored in every result file and checked on resume.

    ``epochs``, ``lr``, ``optimizer``, ``lr_rule``, ``distill_weight``, ``distill``
    and ``temperature`` are the shared recovery (:class:`RecoverySettings`);
    ``calibration_images`` bounds the one-shot BatchNorm recalibration; ``trials``,
    ``space`` and ``search_recovery_epochs`` (how long the search trains back its
    best candidates; None: the space's own) are autoprune's search; ``test_items`` evaluates a fixed
    subset of the test split (None: all of it; the quick preset's smoke test);
    ``match_tol`` is how close a bisection brings a knob to the budget boundary.
    """

    epochs: float = 1.0
    lr: float = 5e-4
    optimizer: str = "adam"
    lr_rule: str = "cosine"
    distill_weight: float = 0.5
    distill: str = "kl"
    temperature: float = 2.0
    calibration_images: int = 2000
    test_items: int | None = None
    match_tol: float = 1e-3
    trials: int = 8
    space: str = "default"
    search_recovery_epochs: float | None = None
    latency_batch_size: int = 64
    latency_threads: int = 1
    latency_rounds: int = 5
    latency_repeats: int = 30

    def recovery(self, seed: int) -> RecoverySettings:
        """The shared recovery of one seed."""
        return RecoverySettings(
            epochs=self.epochs,
            lr=self.lr,
            optimizer=self.optimizer,
            lr_rule=self.lr_rule,
            distill_weight=self.distill_weight,
            distill=self.distill,
            temperature=self.temperature,
            seed=seed,
        )

    def relevant(self, *, search: bool) -> dict:
        """The settings a row depends on (search rows also on the search's own)."""
        search_only = {"trials", "space", "search_recovery_epochs"}
        skip = {"latency_rounds", "latency_repeats"} | (set() if search else search_only)
        return {k: v for k, v in asdict(self).items() if k not in skip}


class BenchTask:
    """One task of the benchmark: its dense checkpoint, layer sets, settings and measurements."""

    def __init__(
        self,
        task: Task,
        settings: RunSettings,
        *,
        runs_dir: str | Path = "results/benchmarks/runs",
        dense_dir: str | Path | None = None,
    ) -> None:
        self.task = task
        self.settings = settings
        self.runs_dir = Path(runs_dir)
        # dense_dir/dense/: the checkpoint every method of the run starts from, kept with the
        # results (trained again with another thread count or on another machine, it has other
        # weights); None: the user's cache
        dense = dense_model(task, seed=0, cache=dense_dir, progress=False)
        self.dense: nn.Module = dense.model.eval()
        self.dense_info = dense.info
        self.dense_path = Path(dense.info["path"])
        self.dense_digest = weights_digest(self.dense)
        self.example_input = task.example_input
        self.dense_costs = measure_costs(
            self.dense, self.example_input, scope=self.task.cost_modules, flops=True
        )
        self.layers = list(prunable_layers(self.dense))
        self.structured_layers: list[str] = []
        self.structured_note = ""
        self.unit_kinds: set[str] = set()
        try:
            units = structured_units(self.fresh_dense(), self.example_input)
            self.structured_layers = [
                layer for group in units.groups.values() for layer in group.out_layers
            ]
            self.unit_kinds = {entry.kind for entry in units.history}
        except PruningError as exc:
            self.structured_note = str(exc)
        # layers no structured group removes outputs from: the model's output layer(s)
        self.output_layers = [n for n in self.layers if n not in self.structured_layers]
        self._dense_latency: dict | None = None
        self._statistics: dict[tuple, dict] = {}  # the dense model's, per (needs, seed)

    @property
    def has_heads(self) -> bool:
        """Whether the model's structured units include attention heads (a transformer)."""
        return "heads" in self.unit_kinds

    def fresh_dense(self) -> nn.Module:
        """A copy of the dense model, in eval mode."""
        return copy.deepcopy(self.dense).eval()

    def checkpoint_task(self) -> Task:
        """The task pinned to the dense checkpoint (so a search of any seed starts from it)."""
        return replace(self.task, checkpoint=self.dense_path)

    # ------------------------------------------------------------------ pruning and the regimes

    def prune_only(self, policy: Policy) -> nn.Module:
        """A dense copy pruned as ``policy`` says, not trained (masks applied, channels removed).

        A data-driven criterion's statistics (Taylor scores, activations) are those of
        the dense model, collected once per (statistics, seed) and reused by every
        policy asking for them: a bisection's probes differ only in the amount.
        """
        model = self.fresh_dense()
        calibration = Calibration.from_task(self.task)
        stats = self._dense_statistics(model, policy, calibration)
        Pruner(model, policy, calibration=calibration, statistics=stats).step()
        return model.eval()

    def _dense_statistics(self, model: nn.Module, policy: Policy, calibration) -> dict | None:
        needs = statistics_needed(lp.criterion for lp in policy.layers.values())
        if not needs:
            return None
        key = (needs, policy.seed)
        if key not in self._statistics:
            self._statistics[key] = collect_statistics(
                model, prunable_layers(model), calibration, needs=set(needs), seed=policy.seed
            )
        return self._statistics[key]

    def recalibrate(self, model: nn.Module, seed: int) -> nn.Module:
        """The one-shot step: BatchNorm statistics re-estimated on at most ``calibration_images`` images."""
        images = self.settings.calibration_images
        batches = max(1, images // CALIBRATION_BATCH)
        recalibrate_batchnorm(
            model,
            self.task.train_data,
            batches=batches,
            batch_size=min(CALIBRATION_BATCH, images),
            seed=seed,
        )
        return model.eval()

    def recover(self, model: nn.Module, seed: int):
        """The shared recovery, in place; returns its :class:`~autoprune.training.RecoveryLog`."""
        return recover(model, self.dense, self.task, self.settings.recovery(seed))

    def test_metric(self, model: nn.Module) -> float:
        """The test metric of a model (on ``test_items`` of the test split when set)."""
        return evaluate(
            model.eval(), self.task.test_data, self.task, max_items=self.settings.test_items
        ).metric

    # ------------------------------------------------------------------ costs

    def fraction(self, model: nn.Module, kind: str, *, quick: bool = True) -> float:
        """Cost of ``model`` as a fraction of the dense model's, for a budget of ``kind``."""
        if kind == "latency":
            rounds, repeats = (
                (2, max(5, self.settings.latency_repeats // 3))
                if quick
                else (self.settings.latency_rounds, self.settings.latency_repeats)
            )
            latency = self._latency(model, rounds=rounds, repeats=repeats)
            return latency["model"]["median_ms"] / latency["dense"]["median_ms"]
        costs = measure_costs(model, self.example_input, scope=self.task.cost_modules)
        return getattr(costs, COST_FIELD[kind]) / getattr(self.dense_costs, COST_FIELD[kind])

    def match(
        self,
        budget: Budget,
        build: Callable[[float], nn.Module],
        *,
        low: float,
        high: float,
        increasing: bool = False,
        tol: float | None = None,
    ) -> Match:
        """Bisect a method's knob on the real pruned model's cost until it meets ``budget``."""
        tol = self.settings.match_tol if tol is None else tol
        limit = budget.value * (LATENCY_MARGIN if budget.kind == "latency" else 1.0)
        return bisect_knob(
            lambda knob: self.fraction(build(knob), budget.kind),
            limit,
            low=low,
            high=high,
            increasing=increasing,
            tol=tol,
        )

    def shared_match(
        self, method: str, budget: Budget, find: Callable[[], Match]
    ) -> tuple[Match, float]:
        """A seed-independent method's match, found once per budget and reused by every seed.

        Returns the match and the seconds finding it took (charged to every row:
        a user running the method once pays them). Kept in ``runs/<budget>/<method>-match.json``.
        """
        import time

        from autoprune._io import read_json, write_json

        path = self.runs_dir / budget.slug / f"{method}-match.json"
        if path.is_file():
            stored = read_json(path)
            return Match(stored["knob"], stored["cost"], stored["probes"]), stored["seconds"]
        start = time.perf_counter()
        match = find()
        seconds = round(time.perf_counter() - start, 2)
        write_json(path, {**asdict(match), "seconds": seconds})
        return match, seconds

    def _latency(self, model: nn.Module, *, rounds: int, repeats: int) -> dict[str, dict]:
        s = self.settings
        return side_by_side_latency(
            {"dense": self.dense, "model": model},
            self.example_input,
            rounds=rounds,
            batch_size=s.latency_batch_size,
            threads=s.latency_threads,
            repeats=repeats,
        )

    def measure(self, model: nn.Module, *, latency: bool | None) -> dict:
        """The costs of a finished model (see the module docstring); latency when asked for, or
        with ``latency=None`` when the model is structurally smaller (it executes fewer MACs).

        A search's pick is structured or not as the search chose, so it is timed exactly when
        it was pruned structurally, as every structured baseline is.
        """
        model.eval()
        costs = measure_costs(model, self.example_input, scope=self.task.cost_modules, flops=True)
        dense = self.dense_costs
        if latency is None:
            latency = costs.macs < dense.macs
        row = {
            "params": costs.params,
            "macs": costs.macs,
            "sparse_macs": costs.sparse_macs,
            "flops": costs.flops,
            "bytes": costs.bytes,
            "speedup_macs": dense.macs / costs.macs if costs.macs else None,
            "fractions": {
                "params": costs.params / dense.params,
                "macs": costs.macs / dense.macs,
                "sparse_macs": costs.sparse_macs / dense.sparse_macs,
                "flops": costs.flops / dense.flops if dense.flops else None,
                "size": costs.bytes / dense.bytes,
            },
        }
        if latency:
            s = self.settings
            measured = self._latency(model, rounds=s.latency_rounds, repeats=s.latency_repeats)
            model_ms, dense_ms = measured["model"]["median_ms"], measured["dense"]["median_ms"]
            row.update(
                latency_ms=model_ms,
                dense_latency_ms=dense_ms,
                latency_spread_ms=[measured["model"]["min_ms"], measured["model"]["max_ms"]],
                speedup_measured=dense_ms / model_ms,
            )
            row["fractions"]["latency"] = model_ms / dense_ms
            if row["speedup_macs"]:
                row["promise_kept"] = row["speedup_measured"] / row["speedup_macs"]
        return row
