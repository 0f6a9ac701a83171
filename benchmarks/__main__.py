"""The benchmarks' command line: ``python -m benchmarks engine | compare | transformer | ablation | readme | fidelity | features | features-search | traintime | sensitivity-cost | latency-model``.

The benchmarks live beside the package, not in it (a user's install has no use
for them); ``make bench`` and its siblings run them from a source checkout.

Example:
    $ python -m benchmarks compare --quick --estimate
"""

from __future__ import annotations

from autoprune.errors import AutopruneError

# suites whose module's run(out) takes nothing else; results go to results/benchmarks/<module>
SIMPLE_SUITES = {
    "fidelity": "fidelity",
    "features": "features",
    "features-search": "features_search",
    "traintime": "traintime",
    "sensitivity-cost": "sensitivity_cost",
    "latency-model": "latency_model",
}


def cmd_bench(args) -> int:
    if args.suite == "readme":
        from pathlib import Path

        from benchmarks import readme

        path = Path(args.out or "README.md")
        changed = readme.update_readme(path)
        unsourced = readme.unsourced_figures(path.read_text(), path.parent)
        print(f"{'Updated' if changed else 'Unchanged'}: {path}")
        if unsourced:
            print(f"Figures in no linked results file: {', '.join(unsourced)}")
        return 1 if unsourced else 0
    if args.suite in SIMPLE_SUITES:
        import importlib

        module = importlib.import_module(f"benchmarks.{SIMPLE_SUITES[args.suite]}")
        out = args.out or f"results/benchmarks/{SIMPLE_SUITES[args.suite]}"
        print(f"Wrote {module.run(out)}")
        return 0
    if args.suite == "ablation":
        from benchmarks import ablation

        kwargs = {"trials": args.trials} if args.trials else {}
        path = ablation.run(
            args.out or "results/benchmarks/ablation", progress=not args.quiet, **kwargs
        )
        print(f"Wrote {path}")
        return 0
    if args.suite == "engine":
        from benchmarks import engine

        path = engine.run(
            args.out or "results/engine", epochs=1.0 if args.epochs is None else args.epochs
        )
        print(f"Wrote {path}")
        return 0
    if args.suite not in ("compare", "transformer"):
        raise AutopruneError(
            f"Unknown benchmark suite {args.suite!r}; expected one of: engine, compare, transformer."
        )
    from benchmarks import compare

    preset = "transformer" if args.suite == "transformer" else "quick" if args.quick else "full"
    config = compare.configure(
        preset,
        tasks=args.task,
        methods=args.method,
        budgets=args.budget,
        seeds=args.seeds,
        trials=args.trials,
        epochs=args.epochs,
        out=args.out,
    )
    estimate = compare.estimate_seconds(config)
    if args.estimate:
        for plan in config.tasks:
            s = config.settings(plan)
            minutes = (
                f"~{estimate[plan.name] / 60:.0f} min" if plan.name in estimate else "no estimate"
            )
            print(
                f"{plan.name}: {', '.join(plan.budgets)}; {len(config.methods_of(plan))} methods, seeds "
                f"{','.join(map(str, config.seeds))}, {s.epochs:g} epoch(s), {s.trials} trials: {minutes}"
            )
        print(
            f"Total: ~{sum(estimate.values()) / 60:.0f} min on an idle 2-core machine; results in {config.out}"
        )
        return 0
    paths = compare.run(config, progress=not args.quiet)
    for task, files in paths.items():
        print(f"{task}: {files['markdown']}, {files['csv'].name}, {files['plot'].name}")
    return 0


def build_parser():
    """The parser of ``python -m benchmarks``."""
    import argparse

    p = argparse.ArgumentParser(
        prog="python -m benchmarks", description="Run a benchmark suite; figures go to results/."
    )
    p.add_argument(
        "suite",
        nargs="?",
        default="engine",
        choices=[
            "engine",
            "compare",
            "transformer",
            "ablation",
            "readme",
            *SIMPLE_SUITES,
        ],
        help="engine: criteria on real data; compare: autoprune against the baselines; "
        "transformer: MiniLM heads and neurons; ablation: what the sensitivity analysis buys; "
        "fidelity: how the search's cheap score ranks against accuracy after recovery; "
        "features: input-feature pruning against SelectKBest and RFE on breast cancer; "
        "features-search: the search with input features in its space and without; "
        "traintime: train-time against post-training pruning at the same structure and epochs; "
        "sensitivity-cost: a structured sensitivity analysis against the forward passes it needs; "
        "latency-model: the latency models' error on measured variants, and rounding widths; "
        "readme: rebuild the README's result tables from results/ (default %(default)s)",
    )
    p.add_argument(
        "--out",
        default=None,
        help="output directory (default results/engine, results/benchmarks, or results/benchmarks/quick)",
    )
    p.add_argument(
        "--epochs", type=float, default=None, help="fine-tuning epochs (default: the suite's)"
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="compare: the quick preset (one seed, two budgets, ~12 min)",
    )
    p.add_argument("--task", action="append", help="compare: only this task (repeatable)")
    p.add_argument(
        "--method", action="append", help="compare: only this method (repeatable), e.g. lamp"
    )
    p.add_argument(
        "--budget", action="append", help="compare: only this budget (repeatable), e.g. params=0.05"
    )
    p.add_argument(
        "--seeds", default=None, help="compare: comma-separated seeds (default: the preset's)"
    )
    p.add_argument(
        "--trials", type=int, default=None, help="compare: search trials (default: the preset's)"
    )
    p.add_argument(
        "--estimate", action="store_true", help="compare: print the estimated runtime and stop"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar or per-cell lines")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the suite the arguments name; a user error is one line and exit status 2."""
    import sys

    args = build_parser().parse_args(argv)
    try:
        return cmd_bench(args)
    except AutopruneError as exc:
        print(f"benchmarks: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
