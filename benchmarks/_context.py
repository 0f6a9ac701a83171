"""What every method of one benchmark task shares: the dense checkpoint, the settings, the measurements.

:class:`BenchTask` loads the dense model once (``dense_model(task, seed=0)``:
every method and every seed starts from this checkpoint), knows which layers
each kind of method prunes, and measures a finished model the same way for
every row: test metric, non-zero parameters, MACs (budget MACs and dense-kernel
MACs), bytes on disk, and latency side by side with the dense model.

Budget fractions are of the dense model: ``params`` and ``macs`` as
:func:`autoprune.budgets.measure_costs` counts them, ``size`` as the bytes of
the weights file, ``latency`` as the model's median latency over the dense
model's, measured in the same interleaved call.

Example:
    >>> from autoprune.tasks import get_task
    >>> ctx = BenchTask(get_task("digits-mlp"), RunSettings(epochs=0.1))   # doctest: +SKIP
    >>> ctx.fraction(ctx.fresh_dense(), "params")                          # doctest: +SKIP
    1.0
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from torch import nn

from autoprune.budgets import Budget, measure_costs
from autoprune.errors import PruningError
from autoprune.introspect import profile_model, prunable_layers, side_by_side_latency
from autoprune.policy import FinetuneRecipe, Policy
from autoprune.prune import Calibration, Pruner, structured_units
from autoprune.tasks import Task
from autoprune.training import (
    TrainingSettings,
    dense_model,
    evaluate,
    prune_and_finetune,
    train_model,
)
from benchmarks._matching import Match, bisect_knob

COST_FIELD = {"params": "params", "macs": "macs", "size": "bytes"}
# a latency match aims this far under the limit: measured latency is noisy, the final check is not lenient
LATENCY_MARGIN = 0.97


@dataclass(frozen=True)
class RunSettings:
    """Settings of one task's benchmark run; stored in every result file and checked on resume."""

    epochs: float = 1.0
    lr: float = 5e-4
    trials: int = 8
    space: str = "default"
    latency_batch_size: int = 64
    latency_threads: int = 1
    latency_rounds: int = 5
    latency_repeats: int = 30

    def relevant(self, *, search: bool) -> dict:
        """The settings a row depends on (search rows also on trials and space)."""
        keys = ["epochs", "lr", "latency_batch_size", "latency_threads"] + (
            ["trials", "space"] if search else []
        )
        return {k: v for k, v in asdict(self).items() if k in keys}


class BenchTask:
    """One task of the benchmark: its dense checkpoint, layer sets, settings and measurements."""

    def __init__(
        self, task: Task, settings: RunSettings, *, runs_dir: str | Path = "results/benchmarks/runs"
    ) -> None:
        self.task = task
        self.settings = settings
        self.runs_dir = Path(runs_dir)
        dense = dense_model(task, seed=0, progress=False)
        self.dense: nn.Module = dense.model.eval()
        self.dense_info = dense.info
        self.dense_path = Path(dense.info["path"])
        self.example_input = task.example_input
        self.dense_costs = measure_costs(
            self.dense, self.example_input, scope=self.task.cost_modules
        )
        self.dense_kernel_macs = profile_model(self.dense, self.example_input).macs
        self.layers = list(prunable_layers(self.dense))
        self.structured_layers: list[str] = []
        self.structured_note = ""
        try:
            groups = structured_units(self.fresh_dense(), self.example_input).groups
            self.structured_layers = [
                layer for group in groups.values() for layer in group.out_layers
            ]
        except PruningError as exc:
            self.structured_note = str(exc)
        # layers no structured group removes outputs from: the model's output layer(s)
        self.output_layers = [n for n in self.layers if n not in self.structured_layers]

    def fresh_dense(self) -> nn.Module:
        """A copy of the dense model, in eval mode."""
        return copy.deepcopy(self.dense).eval()

    def checkpoint_task(self) -> Task:
        """The task pinned to the dense checkpoint (so a search of any seed starts from it)."""
        return replace(self.task, checkpoint=self.dense_path)

    # ------------------------------------------------------------------ pruning and fine-tuning

    def prune_only(self, policy: Policy) -> nn.Module:
        """A dense copy pruned as ``policy`` says, not fine-tuned (a bisection probe)."""
        model = self.fresh_dense()
        Pruner(model, policy, calibration=Calibration.from_task(self.task)).step()
        return model.eval()

    def finetune_policy(self, policy: Policy, seed: int) -> nn.Module:
        """Prune a dense copy with ``policy`` and fine-tune it with the benchmark's recipe (masks enforced)."""
        recipe = FinetuneRecipe(epochs=self.settings.epochs, lr=self.settings.lr)
        policy = replace(policy, finetune=recipe, seed=seed)
        return prune_and_finetune(self.fresh_dense(), policy, self.task).model.eval()

    def test_metric(self, model: nn.Module) -> float:
        """The test metric of a model (e.g. right after pruning, before fine-tuning)."""
        return evaluate(model.eval(), self.task.test_data, self.task).metric

    def train(self, model: nn.Module, seed: int) -> nn.Module:
        """Fine-tune ``model`` in place with the benchmark's recipe (Adam, epochs, lr, seed)."""
        recipe = TrainingSettings(epochs=self.settings.epochs, lr=self.settings.lr, seed=seed)
        train_model(model, self.task, settings=recipe, progress=False, desc="fine-tune")
        return model.eval()

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
        tol: float = 1e-3,
    ) -> Match:
        """Bisect a method's knob on the real pruned model's cost until it meets ``budget``."""
        limit = budget.value * (LATENCY_MARGIN if budget.kind == "latency" else 1.0)
        return bisect_knob(
            lambda knob: self.fraction(build(knob), budget.kind),
            limit,
            low=low,
            high=high,
            increasing=increasing,
            tol=tol,
        )

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

    def measure(self, model: nn.Module) -> dict:
        """Everything a table row shows about a finished model (see the module docstring)."""
        model.eval()
        test = evaluate(model, self.task.test_data, self.task)
        costs = measure_costs(model, self.example_input, scope=self.task.cost_modules)
        kernel_macs = profile_model(model, self.example_input).macs
        latency = self._latency(
            model, rounds=self.settings.latency_rounds, repeats=self.settings.latency_repeats
        )
        model_ms, dense_ms = latency["model"]["median_ms"], latency["dense"]["median_ms"]
        dense = self.dense_costs
        return {
            "test_metric": test.metric,
            "params": costs.params,
            "macs": costs.macs,
            "kernel_macs": kernel_macs,
            "bytes": costs.bytes,
            "latency_ms": model_ms,
            "dense_latency_ms": dense_ms,
            "latency_spread_ms": [latency["model"]["min_ms"], latency["model"]["max_ms"]],
            "speedup_measured": dense_ms / model_ms,
            "speedup_macs": self.dense_kernel_macs / kernel_macs,
            "fractions": {
                "params": costs.params / dense.params,
                "macs": costs.macs / dense.macs,
                "size": costs.bytes / dense.bytes,
                "latency": model_ms / dense_ms,
            },
        }
