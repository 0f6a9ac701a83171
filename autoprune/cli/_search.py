"""Commands of a search: search, worker, demo (report and pick: :mod:`autoprune.cli._pick`)."""

from __future__ import annotations

from autoprune._table import format_table
from autoprune.cli._args import (
    add_cluster_arguments,
    add_pick_arguments,
    add_task_arguments,
    parse_option,
)
from autoprune.cli._pick import finalize_and_report
from autoprune.cli._pick import register as register_run_commands

# the demo: a model a quarter the size on disk and measurably faster, so channels are removed
DEMO_TASK, DEMO_BUDGETS, DEMO_SPACE, DEMO_TRIALS = (
    "fashion-cnn",
    ("size=0.25", "latency=0.6"),
    "structured",
    60,
)
DEMO_RUN = "results/runs/fashion-cnn-size0.25-latency0.6"


def _print_search_result(result) -> None:
    ctx = result.context
    trials, front = result.trials, result.front
    print(f"\nSearch on {ctx.task.name}: " + "; ".join(ctx.describe_limits()))
    counts = trials.groupby("fidelity").size().to_dict() if not trials.empty else {}
    failed = int((trials.state == "FAIL").sum()) if not trials.empty else 0
    print(
        f"  {int((trials.state == 'COMPLETE').sum())} trials complete ("
        + ", ".join(f"{v} {k}" for k, v in counts.items() if k)
        + f"), {failed} failed, {result.seconds:.0f} s"
    )
    print(f"  dense validation {ctx.task.metric_name}: {ctx.dense_info['val_metric']:.4f}")
    for granularity, tolerance in ctx.relaxed.items():
        at = "not capped" if tolerance is None else f"capped at tolerance {tolerance:g}"
        print(f"  {granularity}: the sensitivity caps left no room under the budget; amounts {at}")
    if front.empty:
        print("  no feasible recovered candidate yet: run more trials or loosen the budget")
    else:
        rows = [
            {
                "trial": int(r.number),
                f"val {ctx.task.metric_name}": float(r.val_metric),
                "cost/limit": float(r.cost),
                "params": int(r.params),
                "MACs": int(r.macs),
                "bytes": int(r.bytes),
                "granularity": r.granularity,
                "scope": r.scope,
                "criterion": r.criterion,
                "level": float(r.level),
                "from": r.seed or r.provenance,
            }
            for r in front.itertuples()
        ]
        kind = "recovered" if (front.fidelity == "recovered").all() else "one-shot"
        print(f"  Pareto front (feasible, {kind}):")
        print("\n".join("    " + line for line in format_table(rows).splitlines()))
        best = result.best
        print(
            f"  best feasible: trial {int(best.number)}, validation {ctx.task.metric_name} {best.val_metric:.4f} "
            f"({best.val_metric - ctx.dense_info['val_metric']:+.4f} vs dense)"
        )
    print(f"  run directory: {result.run_dir}")


def cmd_search(args) -> int:
    from autoprune.budgets import parse_budgets
    from autoprune.search import SearchOptions, load_space, search

    parse_budgets(args.budget)  # a wrong budget or space stops here, before any work
    load_space(args.space)
    options = SearchOptions(
        storage=args.storage,
        study_name=args.study,
        n_jobs=args.n_jobs,
        backend=args.backend,
        scheduler=args.scheduler,
        device=args.device,
        sensitivity=not args.no_sensitivity,
        latency_batch_size=args.latency_batch_size,
        latency_threads=args.latency_threads,
        task_options=dict(parse_option(o) for o in args.task_option or []),
    )
    result = search(
        args.task,
        args.budget,
        space=args.space,
        n_trials=args.trials,
        out=args.out,
        seed=args.seed,
        options=options,
        progress=not args.quiet,
    )
    _print_search_result(result)
    if args.no_finalize:
        return 0
    return finalize_and_report(result, args)


def cmd_worker(args) -> int:
    from autoprune.search import worker_main

    finished = worker_main(args.out or ".", args.storage, args.study, device=args.device)
    print(f"worker finished {finished} trial(s) of study {args.study!r}")
    return 0


def cmd_demo(args) -> int:
    """The main job: a real search on Fashion-MNIST, the final fine-tune and the report."""
    trials = DEMO_TRIALS if args.trials is None else args.trials
    print(
        f"== autoprune demo: {DEMO_TASK} under {' and '.join(DEMO_BUDGETS)} ({DEMO_SPACE} space), "
        f"{trials} candidates, then the final model and the report ==",
        flush=True,
    )
    argv = [
        "search",
        "--task",
        DEMO_TASK,
        *(arg for budget in DEMO_BUDGETS for arg in ("--budget", budget)),
        "--space",
        DEMO_SPACE,
        "--trials",
        str(trials),
    ]
    if args.out:
        argv += ["--out", args.out]
    from autoprune.cli import main

    return main(argv)


def register(sub) -> None:
    """Add this module's commands to the ``autoprune`` parser (with those of :mod:`autoprune.cli._pick`)."""
    _register_search(sub)
    register_run_commands(sub)  # report and pick: the run directory's commands, listed after search
    _register_worker(sub)
    _register_demo(sub)


def _register_search(sub) -> None:
    """The ``search`` command."""
    p = sub.add_parser(
        "search", help="search pruning policies under a budget (resumes an existing run)"
    )
    add_task_arguments(p)
    p.add_argument(
        "--budget",
        action="append",
        required=True,
        metavar="KIND=VALUE",
        help="params=0.1, macs=50%%, size=0.4MB, latency=0.5 or latency=5ms (repeatable)",
    )
    p.add_argument(
        "--trials",
        type=int,
        default=200,
        help="candidates to score (default %(default)s; the best are then recovered)",
    )
    p.add_argument(
        "--space", default="default", help="search space name or YAML file (default %(default)s)"
    )
    p.add_argument("--out", default=None, help="run directory (default results/runs/TASK-BUDGET)")
    p.add_argument(
        "--storage",
        default=None,
        help="Optuna storage URL (default: a journal file in the run directory)",
    )
    p.add_argument("--study", default=None, help="study name (default: the run directory's name)")
    p.add_argument(
        "--n-jobs", type=int, default=1, help="parallel worker processes (default %(default)s)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--no-sensitivity",
        action="store_true",
        help="no sensitivity analysis: no caps, no seed policies",
    )
    _add_latency_arguments(p)
    add_cluster_arguments(p)
    p.add_argument(
        "--device",
        default="cpu",
        help="cpu, cuda or cuda:N: where models train and latency is measured",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument(
        "--no-finalize",
        action="store_true",
        help="stop after the trials: no final fine-tune, no report",
    )
    add_pick_arguments(p)
    p.set_defaults(func=cmd_search)


def _add_latency_arguments(p) -> None:
    """How latency budgets are measured."""
    p.add_argument(
        "--latency-batch-size",
        type=int,
        default=64,
        help="batch size of latency budgets (default %(default)s)",
    )
    p.add_argument(
        "--latency-threads",
        type=int,
        default=1,
        help="threads of latency budgets (default %(default)s)",
    )


def _register_worker(sub) -> None:
    """The ``worker`` command."""
    p = sub.add_parser("worker", help="join an existing study and run trials until none is left")
    p.add_argument(
        "--storage", default=None, help="the study's storage URL (default: the journal in --out)"
    )
    p.add_argument("--study", required=True, help="study name")
    p.add_argument(
        "--out", default=None, help="run directory (holds the journal when no --storage is given)"
    )
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: the study's)")
    p.set_defaults(func=cmd_worker)


def _register_demo(sub) -> None:
    """The ``demo`` command."""
    p = sub.add_parser(
        "demo",
        help="the main job: search fashion-cnn under size=0.25 and latency=0.6 "
        "(structured), finalize, report",
    )
    p.add_argument("--trials", type=int, default=None, help=f"candidates (default {DEMO_TRIALS})")
    p.add_argument("--out", default=None, help=f"run directory (default {DEMO_RUN})")
    p.set_defaults(func=cmd_demo)
