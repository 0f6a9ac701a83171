"""Commands on the run directory of a search: report (finalizing first if asked) and pick.

Example:
    >>> import argparse
    >>> parser = argparse.ArgumentParser(prog="autoprune")
    >>> register(parser.add_subparsers())
    >>> args = parser.parse_args(["pick", "results/runs/x", "--budget", "params=0.2"])
    >>> args.budget, args.trial, args.func is cmd_pick
    ('params=0.2', None, True)
"""

from __future__ import annotations

import sys

from autoprune.cli._args import add_pick_arguments


def print_budget_checks(summary) -> None:
    """One line per budget of a final model: measured from its saved files, against the limit."""
    for check in summary.budget_checks:
        print(
            f"  {check.budget}: measured {check.value:,.6g} from the saved files, limit {check.limit:,.6g}: "
            + ("met" if check.met else "NOT MET")
        )


def finalize_and_report(result_or_dir, args) -> int:
    """Finalize a run (a missing final model is a note, not an error), build its report, print both."""
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
        print_budget_checks(summary)
    print(f"Report: {paths['html']} (and {paths['markdown'].name})")
    return 0


def cmd_report(args) -> int:
    """Rebuild the report of a run directory (finalize first with --finalize)."""
    from pathlib import Path

    from autoprune.final import export_tables
    from autoprune.report import build_report
    from autoprune.search import open_run

    run_dir = Path(args.run_dir)
    if args.finalize:
        return finalize_and_report(open_run(run_dir), args)
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
    """Make and describe the final model of another trial, or of a tighter budget."""
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
    print_budget_checks(summary)
    print(f"Policy and model: {chosen.out} (policy.yaml, model.safetensors, pick.json)")
    return 0


def register(sub) -> None:
    """Add this module's commands to the ``autoprune`` parser."""
    _register_report(sub)
    _register_pick(sub)


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
