"""The comparison benchmark: autoprune against the baselines (``python -m benchmarks compare``, ``make bench``).

For each task, budget and seed, every method of :mod:`benchmarks.methods`
prunes the same dense checkpoint to the same budget, and the runner takes the
pruned model through two regimes the same way for every method (one-shot:
BatchNorm recalibration on at most 2,000 training images; with recovery: the
shared :func:`autoprune.training.recover`). Under ``out``:

* ``<task>.md`` (settings, versions, commits, headlines, one table per regime and budget),
  ``<task>.csv``, ``<task>_pareto.png``;
* ``raw/<task>/<budget>/<method>/seed<k>.json``: one file per cell; a re-run skips finished cells;
* ``runs/<task>/...``: the searches' run directories and their sensitivity cache (they resume too).

Presets (:func:`estimate_seconds` plans them for an idle 2-core machine from
the costs in :mod:`benchmarks._estimate`; dense training is done once per
task and not counted):

* :func:`quick`: one seed, two cells per task (two budgets; the encoder: one
  budget, two methods), short recoveries, few search trials: at most 15 minutes;
* :func:`full`: 5 seeds; ``fashion-cnn`` at 10/5/2/1% of parameters,
  ``fashion-resnet`` at 50/25% of dense-kernel MACs and 0.5x/0.3x measured
  latency, ``minilm-fidelity`` at 50/30% of encoder parameters: about 4.8 hours.

Example:
    >>> config = quick()
    >>> [plan.name for plan in config.tasks], config.seeds
    (['fashion-cnn', 'fashion-resnet', 'minilm-fidelity'], (0,))
    >>> sum(estimate_seconds(config).values()) <= 15 * 60
    True
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from autoprune._io import write_json
from autoprune._progress import progress_bar
from autoprune.budgets import parse_budget
from autoprune.tasks import Task, get_task
from benchmarks._context import BenchTask, RunSettings
from benchmarks._estimate import REFERENCE_COSTS, TaskCost, estimate_seconds
from benchmarks._report import write_task_report
from benchmarks._runner import (
    BenchError,
    check_dense,
    check_settings,
    finished,
    in_regime,
    plan_cells,
    run_cell,
)
from benchmarks.methods import METHOD_NAMES, get_method


@dataclass(frozen=True)
class TaskPlan:
    """A task (name or Task) and its budgets; the other fields, when set, override the config's."""

    task: str | Task
    budgets: tuple[str, ...]
    epochs: float | None = None
    trials: int | None = None
    methods: tuple[str, ...] | None = None
    lr: float | None = None
    space: str | None = None
    distill_weight: float | None = None
    latency_batch_size: int | None = None
    search_recovery_epochs: float | None = None

    @property
    def name(self) -> str:
        return self.task if isinstance(self.task, str) else self.task.name


# what a TaskPlan may set for its own task
TASK_SETTINGS = (
    "epochs",
    "trials",
    "lr",
    "space",
    "distill_weight",
    "latency_batch_size",
    "search_recovery_epochs",
)


@dataclass(frozen=True)
class BenchConfig:
    """Everything a comparison run depends on; :func:`full` and :func:`quick` are the two presets."""

    tasks: tuple[TaskPlan, ...]
    methods: tuple[str, ...] = METHOD_NAMES
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    defaults: RunSettings = field(default_factory=RunSettings)
    out: Path = field(default=Path("results/benchmarks"))

    def __post_init__(self) -> None:
        for name in (*self.methods, *(m for plan in self.tasks for m in plan.methods or ())):
            get_method(name)
        if not self.tasks or not all(isinstance(p, TaskPlan) for p in self.tasks):
            raise BenchError(
                f"The 'tasks' parameter of BenchConfig must be a non-empty tuple of TaskPlan. Got {self.tasks!r} instead."
            )
        if not self.seeds or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in self.seeds
        ):
            raise BenchError(
                f"The 'seeds' parameter of BenchConfig must be integers >= 0. Got {self.seeds!r} instead."
            )
        for plan in self.tasks:
            for text in plan.budgets:
                if not parse_budget(text).relative:
                    raise BenchError(
                        f"Task {plan.name!r}: budget {text!r} must be a fraction of the dense model "
                        "(e.g. params=0.25 or latency=0.5x), so every method is held to the same share."
                    )
            settings = self.settings(plan)
            if not settings.epochs > 0 or not 0 < settings.lr < 1 or settings.trials < 1:
                raise BenchError(
                    f"Task {plan.name!r}: epochs must be > 0, lr in (0, 1) and trials >= 1. "
                    f"Got epochs={settings.epochs!r}, lr={settings.lr!r}, trials={settings.trials!r} instead."
                )

    def methods_of(self, plan: TaskPlan) -> tuple[str, ...]:
        """The methods run on one task, in table order."""
        wanted = (
            self.methods if plan.methods is None else [m for m in plan.methods if m in self.methods]
        )
        return tuple(m for m in METHOD_NAMES if m in wanted)

    def settings(self, plan: TaskPlan) -> RunSettings:
        """The resolved settings of one task."""
        per_task = {k: getattr(plan, k) for k in TASK_SETTINGS if getattr(plan, k) is not None}
        return replace(self.defaults, **per_task)

    def select(self, *, tasks=None, methods=None, budgets=None) -> BenchConfig:
        """The same configuration restricted to some tasks, methods and/or budgets (by name).

        Budgets named with tasks run on those tasks, whether the preset has them or not.

        Example:
            >>> [p.name for p in full().select(budgets=["params=0.02"]).tasks]
            ['fashion-cnn']
            >>> full().select(tasks=["minilm-fidelity"], budgets=["latency=0.5"]).tasks[0].budgets
            ('latency=0.5',)
        """
        plans = self.tasks
        if tasks:
            known = [p.name for p in self.tasks]
            unknown = [t for t in tasks if t not in known]
            if unknown:
                raise BenchError(
                    f"Task {unknown[0]!r} is not in this benchmark; expected one of {', '.join(known)}."
                )
            plans = tuple(p for p in plans if p.name in tasks)
        if budgets and tasks:  # named with their tasks: the budgets run there, preset or not
            for budget in budgets:
                parse_budget(budget)
            plans = tuple(replace(p, budgets=tuple(budgets)) for p in plans)
        elif budgets:
            known = sorted({b for p in plans for b in p.budgets})
            unknown = [b for b in budgets if b not in known]
            if unknown:
                raise BenchError(
                    f"Budget {unknown[0]!r} is not in this benchmark; expected one of "
                    f"{', '.join(known)}, or name the task (--task) to run it there."
                )
            plans = tuple(
                replace(p, budgets=tuple(b for b in p.budgets if b in budgets))
                for p in plans
                if any(b in budgets for b in p.budgets)
            )
        if not methods:
            return replace(self, tasks=plans)
        for name in methods:
            get_method(name)
        # methods named explicitly run on every selected task, whatever the preset left out there
        plans = tuple(replace(p, methods=None) for p in plans)
        return replace(self, tasks=plans, methods=tuple(m for m in METHOD_NAMES if m in methods))


# the search's variants run when named (--method): without sensitivity, with depth, rounded widths
VARIANTS = ("autoprune-nosens", "autoprune-depth", "autoprune-r8")
NO_ABLATION = tuple(m for m in METHOD_NAMES if m not in VARIANTS)
# Torch-Pruning's uniform L1 prunes as uniform-structured does (the same ratio everywhere, L1): not run twice
CNN_METHODS = tuple(
    m for m in NO_ABLATION if not m.startswith("global-units") and m != "tp-uniform-l1"
)
TRANSFORMER_METHODS = (  # OWL stands for the unstructured allocations: an encoder trains slowly on 2 cores
    "dense",
    "owl",
    "uniform-structured",
    "global-units-l1",
    "global-units-taylor",
    "autoprune",
)
FULL_BUDGETS = {
    "fashion-cnn": ("params=0.1", "params=0.05", "params=0.02", "params=0.01"),
    "fashion-resnet": ("macs=0.5", "macs=0.25", "latency=0.5", "latency=0.3"),
    "minilm-fidelity": ("params=0.5", "params=0.3"),
}
QUICK_BUDGETS = {
    "fashion-cnn": ("params=0.05", "params=0.02"),
    "fashion-resnet": ("macs=0.25", "latency=0.5"),
    "minilm-fidelity": ("params=0.5",),  # an encoder is slow on 2 cores: one budget, two methods
}


QUICK_METHODS = {  # the quick run's smoke test: the strongest few baselines
    "fashion-cnn": ("dense", "global-magnitude", "lamp", "owl", "autoprune"),
    "fashion-resnet": ("dense", "tp-global-l1", "modelopt-fastnas", "autoprune"),
    "minilm-fidelity": ("dense", "global-units-taylor", "autoprune"),
}
FULL_METHODS = {
    "fashion-cnn": CNN_METHODS,
    "fashion-resnet": CNN_METHODS,
    "minilm-fidelity": TRANSFORMER_METHODS,
}


def _plans(budgets: dict, *, epochs: dict, trials: dict, methods: dict) -> tuple[TaskPlan, ...]:
    """The three tasks with their budgets, methods and per-task settings.

    The search trains its best candidates back exactly as every method's recovery trains
    the pruned model (``search_recovery_epochs`` = the task's recovery epochs), so it picks
    the candidate that is best after the recovery it will get: with its space's longer
    0.5 epoch, a structured candidate ranked first after 0.5 epoch fell behind after the
    shared 0.25 (fashion-cnn, 2%).
    """
    return (
        TaskPlan(
            "fashion-cnn",
            budgets["fashion-cnn"],
            epochs=epochs["fashion-cnn"],
            trials=trials["fashion-cnn"],
            search_recovery_epochs=epochs["fashion-cnn"],
            methods=methods["fashion-cnn"],
        ),
        TaskPlan(
            "fashion-resnet",
            budgets["fashion-resnet"],
            epochs=epochs["fashion-resnet"],
            trials=trials["fashion-resnet"],
            methods=methods["fashion-resnet"],
            space="structured",
            search_recovery_epochs=epochs["fashion-resnet"],
        ),
        # the task's own loss is the distance to the dense embeddings: distillation already
        TaskPlan(
            "minilm-fidelity",
            budgets["minilm-fidelity"],
            epochs=epochs["minilm-fidelity"],
            trials=trials["minilm-fidelity"],
            lr=5e-5,
            space="transformer",
            distill_weight=0.0,
            latency_batch_size=8,  # 8 sentences of 64 tokens
            search_recovery_epochs=epochs["minilm-fidelity"],
            methods=methods["minilm-fidelity"],
        ),
    )


def full(out: str | Path = "results/benchmarks") -> BenchConfig:
    """The full comparison (``make bench``): three tasks, both regimes, 5 seeds (about 4.8 h on 2 cores).

    Recovery: 0.25 epoch (fashion-cnn), 0.15 (fashion-resnet), 0.05 (minilm-fidelity).
    Search candidates: 100, 30 and 30 (scored without training, the best few recovered for
    the same epochs); see :mod:`benchmarks._estimate` for the time this takes.
    """
    return BenchConfig(
        tasks=_plans(
            FULL_BUDGETS,
            epochs={"fashion-cnn": 0.25, "fashion-resnet": 0.15, "minilm-fidelity": 0.05},
            trials={"fashion-cnn": 100, "fashion-resnet": 30, "minilm-fidelity": 30},
            methods=FULL_METHODS,
        ),
        methods=NO_ABLATION,
        seeds=(0, 1, 2, 3, 4),
        defaults=RunSettings(latency_repeats=20),
        out=Path(out),
    )


def quick(out: str | Path = "results/benchmarks/quick") -> BenchConfig:
    """The quick comparison (``make bench-quick``): one seed, two cells per task (at most 15 min).

    Short recoveries (0.1, 0.05 and 0.02 epoch), 1,000 test items, 20/10/3 search
    candidates, the strongest few baselines on the two slower tasks: a smoke test
    of the yardstick, not evidence (one seed: every verdict is level).
    """
    return BenchConfig(
        tasks=_plans(
            QUICK_BUDGETS,
            epochs={"fashion-cnn": 0.1, "fashion-resnet": 0.05, "minilm-fidelity": 0.02},
            trials={"fashion-cnn": 20, "fashion-resnet": 10, "minilm-fidelity": 3},
            methods=QUICK_METHODS,
        ),
        methods=NO_ABLATION,
        seeds=(0,),
        defaults=RunSettings(latency_rounds=3, latency_repeats=10, test_items=1000),
        out=Path(out),
    )


def transformer(out: str | Path = "results/benchmarks") -> BenchConfig:
    """``python -m benchmarks transformer``: the full comparison's minilm-fidelity task alone."""
    return full(out).select(tasks=["minilm-fidelity"])


PRESETS = {"full": full, "quick": quick, "transformer": transformer}


def configure(
    preset: str = "full",
    *,
    tasks=None,
    methods=None,
    budgets=None,
    seeds: str | None = None,
    trials: int | None = None,
    epochs: float | None = None,
    out: str | Path | None = None,
) -> BenchConfig:
    """A preset with command-line overrides; ``seeds`` is text like ``"0,1,2"``.

    Example:
        >>> configure("quick", seeds="3", trials=5).seeds
        (3,)
    """
    if preset not in PRESETS:
        raise BenchError(
            f"Unknown benchmark preset {preset!r}; expected one of {', '.join(PRESETS)}."
        )
    config = PRESETS[preset]().select(tasks=tasks, methods=methods, budgets=budgets)
    parsed = None
    if seeds:
        try:
            parsed = tuple(int(v) for v in seeds.split(",") if v.strip())
        except ValueError:
            parsed = ()
        if not parsed or any(s < 0 for s in parsed):
            raise BenchError(
                f"--seeds must be comma-separated integers >= 0, e.g. 0,1,2. Got {seeds!r} instead."
            )
    overrides = {"out": Path(out) if out else None, "seeds": parsed}
    config = replace(config, **{k: v for k, v in overrides.items() if v is not None})
    settings = {k: v for k, v in {"epochs": epochs, "trials": trials}.items() if v is not None}
    if settings:  # a command-line setting wins over the presets' per-task ones
        config = replace(
            config,
            defaults=replace(config.defaults, **settings),
            tasks=tuple(replace(p, **dict.fromkeys(settings)) for p in config.tasks),
        )
    return config


# ----------------------------------------------------------------------------- the run


def _log_line(i: int, total: int, cell, row: dict) -> str:
    head = f"[{i}/{total}] {cell}: "
    if row["status"] != "ok":
        return head + f"{row['status']}: {row.get('reason', '')}"
    kind = row["kind"] or "params"
    oneshot = in_regime(row, "one-shot")
    pick = f" (trial {oneshot['chosen_trial']})" if "oneshot_pick" in row else ""
    return (
        head
        + f"{row['metric']} one-shot {oneshot['oneshot_metric']:.4f}{pick}, "
        + f"recovered {row['recovered_metric']:.4f}, "
        + f"{kind} {row['fractions'].get(kind, float('nan')):.4f} x dense"
        + ("" if row.get("met", True) else " (OVER BUDGET)")
        + f", {row['wall_seconds']:.0f} s + recovery {row['recovery_seconds']:.0f} s"
    )


def run(config: BenchConfig, *, progress: bool = True) -> dict[str, dict[str, Path]]:
    """Run every unfinished cell of ``config`` and write each task's report; returns the report paths per task."""
    out = Path(config.out)
    raw_dir = out / "raw"
    passes = {
        plan.name: plan_cells(plan.name, plan.budgets, config.methods_of(plan), config.seeds)
        for plan in config.tasks
    }
    for plan in config.tasks:
        check_settings(raw_dir, plan.name, config.settings(plan))
    total = sum(len(cells) for p in passes.values() for cells in p)

    def log(text: str) -> None:
        if progress:
            bar.write(text, file=sys.stderr)

    bar = progress_bar(total=total, desc="bench", unit="cell", enabled=progress)
    estimate = estimate_seconds(config)
    if estimate:
        log(
            f"python -m benchmarks compare: {total} cells; estimated {sum(estimate.values()) / 60:.0f} min on 2 cores "
            f"if none is finished yet ({', '.join(f'{k} {v / 60:.0f} min' for k, v in estimate.items())})"
        )
    paths, done, threads = {}, 0, torch.get_num_threads()
    try:
        for plan in config.tasks:
            settings, ctx = config.settings(plan), None
            for number, cells in enumerate(passes[plan.name]):
                ran = False
                for cell in cells:
                    done += 1
                    path = cell.path(raw_dir)
                    if finished(path) is None:
                        if ctx is None:
                            task = plan.task if isinstance(plan.task, Task) else get_task(plan.task)
                            ctx = BenchTask(
                                task, settings, runs_dir=out / "runs" / plan.name, dense_dir=out
                            )
                            check_dense(raw_dir, plan.name, ctx.dense_digest)
                        row = run_cell(ctx, cell, threads=threads)
                        write_json(path, row)
                        log(_log_line(done, total, cell, row))
                        ran = True
                    bar.update(1)
                if ran or number == len(passes[plan.name]) - 1:
                    paths[plan.name] = write_task_report(
                        out, raw_dir, task=plan.name, budgets=plan.budgets, settings=settings
                    )
    finally:
        bar.close()
    return paths


__all__ = [
    "REFERENCE_COSTS",
    "BenchConfig",
    "BenchError",
    "TaskCost",
    "TaskPlan",
    "estimate_seconds",
    "full",
    "quick",
    "run",
]
