"""Everything the trials of one search share, built once per worker.

The context holds the task, the dense model and its costs, the budgets as
absolute limits, the analytic cost model, the units of each granularity with
their bounds (the sensitivity caps), and the latency model when a latency
budget is set. :meth:`SearchContext.estimate` gives the costs of a per-unit
allocation in microseconds; the candidates use it to fit the budget.

Example:
    >>> ctx = example_context()  # digits-mlp under params=0.3, the quick space
    >>> round(ctx.limits["params"] / ctx.dense_costs.params, 2), ctx.granularities
    (0.3, ('unstructured',))
"""

from __future__ import annotations

import copy

import torch

from autoprune.budgets import (
    Budget,
    CostModel,
    Costs,
    LatencyModel,
    LatencyTable,
    TableLatencyModel,
    fit_latency_models,
    measure_costs,
    parse_budgets,
)
from autoprune.errors import BudgetError, RunError, SearchSpaceError
from autoprune.introspect import prunable_layers
from autoprune.policy import (
    AMOUNT_FIELD,
    FinetuneRecipe,
    LayerPolicy,
    Policy,
    ScheduleSpec,
    parse_nm,
)
from autoprune.search._bounds import check_overrides, unit_bounds
from autoprune.search._prepare import PreparedStudy
from autoprune.search._setup import SearchSetup
from autoprune.search._space import SearchSpace
from autoprune.search._wholes import searched_blocks, searched_features
from autoprune.sensitivity import Sensitivity
from autoprune.tasks import Task, get_task
from autoprune.training import dense_model


class SearchContext:
    """Shared, read-only state of a search (see the module docstring)."""

    def __init__(
        self,
        setup: SearchSetup,
        prepared: PreparedStudy,
        *,
        task: Task,
        dense: torch.nn.Module,
        dense_info: dict,
        device: str | None = None,
    ) -> None:
        """Derive the shared state from its parts (no training, no file): :meth:`load` builds one."""
        from autoprune._device import resolve_device

        self.setup = setup
        self.prepared = prepared
        self.device = resolve_device(device or setup.device)
        self.task = task
        self.space = SearchSpace.from_dict(setup.space)
        self.budgets: list[Budget] = parse_budgets(setup.budgets)
        self.primary = self.budgets[0]
        self.dense = dense.to(self.device)
        self.dense_info = dense_info
        self.example_input = self.task.example_input
        self.scope = self.task.cost_modules
        self.cost_model = CostModel(self.dense, self.example_input, scope=self.scope)
        dense_latency = prepared.dense_latency_ms
        self.dense_costs: Costs = measure_costs(self.dense, self.example_input, scope=self.scope)
        if dense_latency is not None:
            self.dense_costs = self.dense_costs.with_latency(dense_latency)
        # what candidates are fitted to and checked against (a latency limit less its margin)
        self.limits = {b.kind: b.aim(self.dense_costs.of(b.kind)) for b in self.budgets}
        self.latency_model: LatencyModel | TableLatencyModel | None = None
        # measured / modelled latency of the candidates timed so far (search/_timing.py)
        self.latency_correction = 1.0
        if "latency" in self.limits:
            import pandas as pd

            table = (
                LatencyTable.from_records(prepared.latency_table)
                if prepared.latency_table
                else None
            )
            models = fit_latency_models(
                pd.DataFrame(prepared.latency_samples), list(self.cost_model.layers), table
            )
            self.latency_model = next(iter(models.values()))  # the table's when it fits
        self.granularities = self._usable_granularities()
        self.sensitivity: dict[str, Sensitivity] = {
            granularity: Sensitivity.from_records(
                data["rows"], dense_metric=data["dense_metric"], metric_name=self.task.metric_name
            )
            for granularity, data in prepared.sensitivity.items()
        }
        self.units = self._units()
        self.blocks = searched_blocks(self)
        self.features = searched_features(self)
        check_overrides(self)
        self.bounds, self.relaxed = unit_bounds(self)

    @classmethod
    def load(
        cls,
        setup: SearchSetup,
        prepared: PreparedStudy,
        *,
        task: Task | None = None,
        device: str | None = None,
    ) -> SearchContext:
        """The context of a prepared study: its task, and the very dense model it was prepared with.

        The dense model comes from the cache (trained there once); a worker whose
        dense model has other weights than the study's is refused.
        """
        from autoprune.sensitivity import weights_digest

        task = task if task is not None else get_task(setup.task, **setup.task_options)
        dense = dense_model(task, seed=setup.seed, progress=False)
        if prepared.dense_digest and weights_digest(dense.model) != prepared.dense_digest:
            raise RunError(
                f"This worker's dense model of task '{task.name}' (seed {setup.seed}) is not the one the "
                "study was prepared with (different weights): give the task a checkpoint file, or copy the "
                "dense cache (~/.cache/autoprune/dense) from the machine that prepared the study."
            )
        return cls(
            setup, prepared, task=task, dense=dense.model, dense_info=dense.info, device=device
        )

    # ------------------------------------------------------------------ units and bounds

    def _usable_granularities(self) -> tuple[str, ...]:
        allowed = list(self.space.granularities)
        if not self.cost_model.groups and "structured" in allowed:
            allowed.remove("structured")
        if "latency" in self.limits:
            allowed = [g for g in allowed if g == "structured"]
            if not allowed:
                raise BudgetError(
                    "A latency budget needs structured pruning (unstructured and N:M sparsity do not make a model "
                    f"faster on dense CPU kernels), but the search space '{self.space.name}' allows none for this model."
                )
        if not allowed:
            raise SearchSpaceError(
                f"The search space '{self.space.name}' allows no granularity this model supports."
            )
        return tuple(allowed)

    def _units(self) -> dict[str, list[str]]:
        layers = list(prunable_layers(self.dense))
        units = {"unstructured": layers, "structured": list(self.cost_model.groups)}
        m_values = {parse_nm(p)[1] for p in self.space.nm}
        units["nm"] = [
            n for n in layers if all(self.cost_model.layers[n].in_dim % m == 0 for m in m_values)
        ]
        return {g: units[g] for g in self.granularities}

    def kept_features(self, count: int) -> tuple[int, ...] | None:
        """The ``count`` most important input features, ascending (None: all of them)."""
        if not self.features or count >= len(self.features):
            return None
        return tuple(sorted(self.features[: max(1, count)]))

    def tiers(self, granularity: str) -> dict[str, int]:
        """Sensitivity tier of each unit (only when the space asks for tiers)."""
        return self.sensitivity[granularity].tiers(self.space.tiers)

    # ------------------------------------------------------------------ policies and costs

    def schedule(self, name: str) -> ScheduleSpec:
        """The schedule called ``name`` with the space's settings."""
        return ScheduleSpec(
            name=name,
            rounds=self.space.finetune.iterative_rounds,
            every=self.space.finetune.gradual_every,
        )

    def policy(
        self,
        granularity: str,
        amounts: dict[str, float | str],
        *,
        scope: str = "local",
        global_amount: float | None = None,
        criterion: str = "l1",
        blocks: tuple[str, ...] = (),
        inputs: tuple[int, ...] | None = None,
    ) -> Policy:
        """The Policy of an allocation (N:M allocations map layers to patterns); ``blocks`` go whole
        first, and only the input features ``inputs`` are kept (None: all).

        Its schedule is the space's first; its recipe is the space's recovery
        (epochs) and fine-tuning learning rate: what the best candidates get.
        """
        space = self.space
        settings = dict(
            schedule=self.schedule(space.schedules[0]),
            finetune=FinetuneRecipe(
                epochs=space.recovery.epochs,
                lr=space.finetune.learning_rate,
                distill_weight=space.recovery.distill_weight,
            ),
            seed=self.setup.seed,
            blocks=tuple(blocks),
            inputs=inputs,
            round_to=space.round_to or None,
        )
        if scope == "global":
            caps = {u: high for u, (_, high) in self.bounds[granularity].items()}
            return Policy.global_ranking(
                list(caps),
                global_amount,
                granularity=granularity,
                criterion=criterion,
                max_sparsity=caps,
                **settings,
            )
        if granularity == "nm":
            layers = {
                u: LayerPolicy(granularity="nm", criterion=criterion, nm=p)
                for u, p in amounts.items()
                if p != "dense"
            }
        else:
            field = AMOUNT_FIELD[granularity]
            layers = {
                u: LayerPolicy(granularity=granularity, criterion=criterion, **{field: float(a)})
                for u, a in amounts.items()
                if float(a) > 0
            }
        return Policy(layers=layers, **settings)

    def reached_policy(self, policy: Policy, reached: dict[str, float]) -> Policy:
        """The local policy of the amounts ``policy`` reached (what the cost model estimates)."""
        granularities = {lp.granularity for lp in policy.layers.values()}
        if granularities != {"unstructured"} and granularities != {"structured"}:
            return policy  # N:M patterns (or nothing): the policy says exactly what it removes
        return self.policy(granularities.pop(), reached, blocks=policy.blocks, inputs=policy.inputs)

    def estimate(self, policy: Policy) -> dict[str, float]:
        """Estimated value of every budgeted quantity for a local-scope policy."""
        costs = self.costs(policy)
        out = {"params": costs["params"], "macs": costs["macs"], "size": costs["bytes"]}
        out["latency"] = costs.get("latency_ms")
        return {kind: out[kind] for kind in self.limits}

    def costs(self, policy: Policy) -> dict[str, float]:
        """Estimated parameters, MACs, bytes (and latency with a latency budget: the model's prediction
        times :attr:`latency_correction`) of a local-scope policy."""
        costs = self.cost_model.estimate(policy)
        out = {"params": costs.params, "macs": costs.macs, "bytes": costs.bytes}
        if self.latency_model is not None:
            modelled = self.latency_model.predict_policy(self.cost_model, policy)
            out["latency_ms"] = self.latency_correction * modelled
        return out

    def meets(self, estimates: dict[str, float], use: float = 1.0) -> bool:
        return all(estimates[k] <= use * limit for k, limit in self.limits.items())

    def latency_of(self, model: torch.nn.Module) -> float:
        """Estimated latency of a pruned model (ms): the latency model's, times :attr:`latency_correction`."""
        return self.latency_correction * self.latency_model.predict_model(model, self.example_input)

    def fresh_dense(self) -> torch.nn.Module:
        return copy.deepcopy(self.dense)

    def limit(self, budget) -> float:
        """``budget``'s own limit on this dense model (:attr:`limits` holds what the search aims at)."""
        return budget.limit(self.dense_costs.of(budget.kind))

    def describe_limits(self) -> list[str]:
        """One line per budget: the limit (and what the search aims at) and the dense model's value."""
        lines = []
        for b in self.budgets:
            dense = self.dense_costs.of(b.kind)
            limit, aim = self.limit(b), self.limits[b.kind]
            aimed = f", aimed at {aim:,.6g}" if aim != limit else ""
            lines.append(f"{b}: limit {limit:,.6g}{aimed} (dense {dense:,.6g})")
        return lines


def example_context(budget: str = "params=0.3", space: str = "quick") -> SearchContext:
    """A small prepared context (task ``digits-mlp``) for examples and tests; seconds on a CPU."""
    import tempfile
    from pathlib import Path

    from autoprune.search._prepare import prepare_study
    from autoprune.search._space import load_space

    setup = SearchSetup(
        task="digits-mlp", budgets=[budget], space=load_space(space).to_dict(), n_trials=4
    )
    task = get_task("digits-mlp")
    prepared = prepare_study(setup, Path(tempfile.mkdtemp()), task, progress=False)
    return SearchContext.load(setup, prepared, task=task)
