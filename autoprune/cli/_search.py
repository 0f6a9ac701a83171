"""Commands of a search: search, worker, report, pick, demo."""

from __future__ import annotations

import sys

from autoprune._table import format_table
from autoprune.cli._args import (
    add_cluster_arguments,
    add_pick_arguments,
    add_task_arguments,
    parse_option,
)

DEMO_TASK, DEMO_BUDGET, DEMO_TRIALS = "fashion-cnn", "params=0.1", 40


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
    return _finalize_and_report(result, args)


def _finalize_and_report(result_or_dir, args) -> int:
    from autoprune.errors import RunError
    from autoprune.final import finalize
    from autoprune.report import build_report

    try:
        summary = finalize(
            result_or_dir,
            rule=args.rule,
            top=args.top,
            tolerance=args.tolerance,
            progress=not args.quiet,
        )
    except RunError as exc:
        print(f"autoprune: no final model: {exc}", file=sys.stderr)
        summary = None
    run_dir = result_or_dir if not hasattr(result_or_dir, "run_dir") else result_or_dir.run_dir
    paths = build_report(run_dir)
    if summary is not None:
        metric, dense, final = summary.metric, summary.dense, summary.final
        print(
            f"\nFinal model (trial {summary.chosen_trial}, rule {summary.rule}): test {metric} "
            f"{summary.test_metric:.4f} (dense {dense.test_metric:.4f}); "
            f"{final.params:,} non-zero params (dense {dense.params:,}), "
            f"{final.bytes:,} bytes on disk"
        )
        for check in summary.budget_checks:
            print(
                f"  {check.budget}: measured {check.value:,.6g} from the saved files, limit {check.limit:,.6g}: "
                + ("met" if check.met else "NOT MET")
            )
    print(f"Report: {paths['html']} (and {paths['markdown'].name})")
    return 0


def cmd_report(args) -> int:
    from pathlib import Path

    from autoprune.final import export_tables
    from autoprune.report import build_report
    from autoprune.search import open_run

    run_dir = Path(args.run_dir)
    if args.finalize:
        return _finalize_and_report(open_run(run_dir), args)
    try:
        export_tables(run_dir, open_run(run_dir).study)  # fresh tables when the study is reachable
    except Exception as exc:  # the report can still be built from the files already there
        print(
            f"autoprune: using the tables already in {run_dir} ({type(exc).__name__}: {exc})",
            file=sys.stderr,
        )
    paths = build_report(run_dir)
    for item in paths["missing"]:
        print(f"  missing: {item}")
    print(f"Report: {paths['html']} (and {paths['markdown'].name})")
    return 0


def cmd_pick(args) -> int:
    from autoprune.final import pick

    chosen = pick(
        args.run_dir,
        trial=args.trial,
        budget=args.budget,
        out=args.out,
        epochs=args.epochs,
        progress=not args.quiet,
    )
    summary = chosen.summary
    metric, dense, final = summary.metric, summary.dense, summary.final
    why = f"the best under {chosen.budget}" if chosen.budget else "as asked"
    if chosen.recover_of is not None:
        why += f"; the recovery of candidate {chosen.recover_of}"
    print(
        f"Picked trial {chosen.trial} ({why}): validation {metric} {summary.val_metric:.4f}, "
        f"test {metric} {summary.test_metric:.4f} (dense {dense.test_metric:.4f}); "
        f"{final.params:,} non-zero params (dense {dense.params:,}), {final.bytes:,} bytes on disk"
    )
    for check in summary.budget_checks:
        print(
            f"  {check.budget}: measured {check.value:,.6g} from the saved files, limit {check.limit:,.6g}: "
            + ("met" if check.met else "NOT MET")
        )
    print(f"Policy and model: {chosen.out} (policy.yaml, model.safetensors, pick.json)")
    return 0


def cmd_worker(args) -> int:
    from autoprune.search import worker_main

    finished = worker_main(args.out or ".", args.storage, args.study, device=args.device)
    print(f"worker finished {finished} trial(s) of study {args.study!r}")
    return 0


def cmd_demo(args) -> int:
    """The main job: a real search on Fashion-MNIST, the final fine-tune and the report."""
    trials = DEMO_TRIALS if args.trials is None else args.trials
    print(
        f"== autoprune demo: {DEMO_TASK} under {DEMO_BUDGET}, {trials} trials, then the final model and the report ==",
        flush=True,
    )
    argv = [
        "search",
        "--task",
        DEMO_TASK,
        "--budget",
        DEMO_BUDGET,
        "--trials",
        str(trials),
    ]
    if args.out:
        argv += ["--out", args.out]
    from autoprune.cli import main

    return main(argv)


def register(sub) -> None:
    """Add this module's commands to the ``autoprune`` parser."""
    _register_search(sub)
    _register_report(sub)
    _register_pick(sub)
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


def _register_report(sub) -> None:
    """The ``report`` command."""
    p = sub.add_parser("report", help="(re)build the report of a run directory")
    p.add_argument("run_dir", help="the run directory")
    p.add_argument(
        "--finalize",
        action="store_true",
        help="pick, fine-tune fully and test the final model first",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_pick_arguments(p)
    p.set_defaults(func=cmd_report)


def _register_pick(sub) -> None:
    """The ``pick`` command."""
    p = sub.add_parser(
        "pick",
        help="the final model of another trial of a run, or under a tighter budget (no new search)",
        description=(
            "Make the final model of another point of a run's trials, the way the search makes "
            "final/ (full fine-tune, one look at test, saved files measured, budgets checked), "
            "without searching again. --trial N takes trial N (see the run's trials.csv or its "
            "report); --budget KIND=VALUE takes the best trial whose costs meet that budget, "
            "which must be tighter than or equal to the run's (recovered trials first, by "
            "validation metric, then confirmed ones by their one-shot metric). The policy file, "
            "the model and pick.json go to RUN_DIR/picks/trial-N/ unless --out says otherwise; "
            "a non-empty directory is replaced only when an earlier pick wrote it."
        ),
    )
    p.add_argument("run_dir", help="the run directory of a search")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--trial", type=int, default=None, metavar="N", help="the trial to take (its number)"
    )
    which.add_argument(
        "--budget",
        default=None,
        metavar="KIND=VALUE",
        help="re-pick the best trial under this tighter budget, e.g. params=0.2",
    )
    p.add_argument("--out", default=None, help="output directory (default RUN_DIR/picks/trial-N)")
    p.add_argument(
        "--epochs",
        type=float,
        default=None,
        help="fine-tuning epochs (default: the search space's finetune.final_epochs)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_pick)


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
        "demo", help="the main job: search fashion-cnn under params=0.1, finalize, report"
    )
    p.add_argument("--trials", type=int, default=None, help=f"trials (default {DEMO_TRIALS})")
    p.add_argument(
        "--out", default=None, help="run directory (default results/runs/fashion-cnn-params0.1)"
    )
    p.set_defaults(func=cmd_demo)
