"""The comparison benchmark: autoprune against the baselines (``python -m benchmarks compare``, ``make bench``).

For each task, budget and seed, every method of :mod:`benchmarks.methods`
runs from the same dense checkpoint with the same fine-tuning budget, and the
finished model is measured the same way (test metric, non-zero parameters,
MACs, bytes on disk, latency side by side with the dense model, wall time,
trials). Under ``out``:

* ``<task>.md`` (settings, versions, one table per budget), ``<task>.csv``, ``<task>_pareto.png``;
* ``raw/<task>/<budget>/<method>/seed<k>.json``: one file per cell; a re-run skips finished cells;
* ``runs/<task>/<budget>/<method>-seed<k>/``: the searches' run directories (they resume too).

Runtime, estimated by :func:`estimate_seconds` for the idle 2-core reference
machine from the runs recorded in ``results/`` (fashion-cnn: 16 s a training
epoch, 12.3 s a fine-tuned search trial; fashion-resnet: 50 s an epoch). Most
of the time goes to the searches (a trial fine-tunes for half an epoch), so
the presets trim trials and epochs rather than seeds or budgets:

* :func:`quick`: fashion-cnn at 25% and 10% of parameters, one seed, 1 epoch,
  8 trials, no sensitivity ablation: ~12.5 min (the 14 baseline rows ~6.6 min,
  the two searches ~4.5 min, reference rows and the sensitivity analysis ~1.4 min);
* :func:`full`: 3 seeds; fashion-cnn at 50/25/10/5% of parameters (1 epoch,
  12 trials: ~80 min) and fashion-resnet at 50% and 25% of MACs and 0.5x
  latency (0.5 epoch, 6 trials: ~87 min): ~2 h 47 min. With 6 trials the search
  tries little more than its seed policies (uniform, sensitivity-proportional,
  global; unstructured and structured) before it finalizes the best; raise
  ``--trials`` for a longer search. With 2 epochs and 24 trials the full run
  would take about 9 hours. The sensitivity ablation runs on its own
  (:mod:`benchmarks.ablation`, ~15 min).

Both presets measure latency over 5 interleaved rounds of 20 runs.
A loaded machine is slower (other processes share the two cores).

Example:
    >>> config = quick()
    >>> [plan.name for plan in config.tasks], config.seeds
    (['fashion-cnn'], (0,))
    >>> estimate_seconds(config)["fashion-cnn"] < 15 * 60
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
from benchmarks._runner import BenchError, check_settings, finished, plan_cells, run_cell
from benchmarks.methods import METHOD_NAMES, get_method


@dataclass(frozen=True)
class TaskPlan:
    """A task (name or Task) and its budgets; ``epochs``, ``trials``, ``methods``, ``lr``, ``space`` override the config's."""

    task: str | Task
    budgets: tuple[str, ...]
    epochs: float | None = None
    trials: int | None = None
    methods: tuple[str, ...] | None = None
    lr: float | None = None
    space: str | None = None

    @property
    def name(self) -> str:
        return self.task if isinstance(self.task, str) else self.task.name


TASK_SETTINGS = ("epochs", "trials", "lr", "space")  # what a TaskPlan may set for its own task


@dataclass(frozen=True)
class BenchConfig:
    """Everything a comparison run depends on; :func:`full` and :func:`quick` are the two presets."""

    tasks: tuple[TaskPlan, ...]
    methods: tuple[str, ...] = METHOD_NAMES
    seeds: tuple[int, ...] = (0, 1, 2)
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

    def select(self, *, tasks=None, methods=None) -> BenchConfig:
        """The same configuration restricted to some tasks and/or methods (by name)."""
        plans = self.tasks
        if tasks:
            known = [p.name for p in self.tasks]
            unknown = [t for t in tasks if t not in known]
            if unknown:
                raise BenchError(
                    f"Task {unknown[0]!r} is not in this benchmark; expected one of {', '.join(known)}."
                )
            plans = tuple(p for p in self.tasks if p.name in tasks)
        if not methods:
            return replace(self, tasks=plans)
        for name in methods:
            get_method(name)
        # methods named explicitly run on every selected task, whatever the preset left out there
        plans = tuple(replace(p, methods=None) for p in plans)
        return replace(self, tasks=plans, methods=tuple(m for m in METHOD_NAMES if m in methods))


NO_ABLATION = tuple(m for m in METHOD_NAMES if m != "autoprune-nosens")


def full(out: str | Path = "results/benchmarks") -> BenchConfig:
    """The full comparison (``make bench``): both Fashion-MNIST tasks, every budget, 3 seeds (~3 h on 2 cores).

    Trimmed to fit (see the module docstring): 1 epoch (fashion-cnn) and 0.5 epoch
    (fashion-resnet) of fine-tuning, 12 search trials on fashion-cnn and 6 on
    fashion-resnet, latency from 5 rounds of 20 runs. The sensitivity ablation
    runs separately (``python -m benchmarks ablation``), as two longer searches.
    """
    return BenchConfig(
        tasks=(
            TaskPlan(
                "fashion-cnn",
                ("params=0.5", "params=0.25", "params=0.1", "params=0.05"),
                epochs=1.0,
                trials=12,
            ),
            TaskPlan(
                "fashion-resnet", ("macs=0.5", "macs=0.25", "latency=0.5"), epochs=0.5, trials=6
            ),
        ),
        methods=NO_ABLATION,
        seeds=(0, 1, 2),
        defaults=RunSettings(latency_repeats=20),
        out=Path(out),
    )


def quick(out: str | Path = "results/benchmarks/quick") -> BenchConfig:
    """The quick comparison (``make bench-quick``): fashion-cnn at 25% and 10% of parameters, one seed (~12 min).

    Every method but the sensitivity ablation (``autoprune-nosens``); 1 epoch of fine-tuning, 8 search trials,
    latency from 5 rounds of 20 runs.
    """
    return BenchConfig(
        tasks=(TaskPlan("fashion-cnn", ("params=0.25", "params=0.1"), epochs=1.0),),
        methods=NO_ABLATION,
        seeds=(0,),
        defaults=RunSettings(trials=8, latency_repeats=20),
        out=Path(out),
    )


def transformer(out: str | Path = "results/benchmarks/transformer") -> BenchConfig:
    """all-MiniLM-L6-v2 (``python -m benchmarks transformer``): autoprune against uniform head/neuron pruning.

    At 50% of the encoder's parameters and at 0.6x measured latency, one seed:
    fidelity to the dense embeddings before and after 1 epoch of distillation
    (lr 5e-5), parameters and measured latency (a batch of 8 sentences of 64 tokens, 1 thread).
    Needs the transformers extra (~45 min).
    """
    return BenchConfig(
        tasks=(
            TaskPlan(
                "minilm-fidelity",
                ("params=0.5", "latency=0.6"),
                epochs=1.0,
                trials=16,
                lr=5e-5,
                space="transformer",
                methods=("dense", "uniform-structured", "autoprune"),
            ),
        ),
        seeds=(0,),
        defaults=RunSettings(latency_batch_size=8, latency_repeats=20),
        out=Path(out),
    )


PRESETS = {"full": full, "quick": quick, "transformer": transformer}


def configure(
    preset: str = "full",
    *,
    tasks=None,
    methods=None,
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
    config = PRESETS[preset]().select(tasks=tasks, methods=methods)
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
    return (
        head
        + f"test {row['metric']} {row['test_metric']:.4f}, {kind} {row['fractions'][kind]:.4f} x dense"
        + ("" if row.get("met", True) else " (OVER BUDGET)")
        + f", {row['wall_seconds']:.0f} s"
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
                            ctx = BenchTask(task, settings, runs_dir=out / "runs" / plan.name)
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
