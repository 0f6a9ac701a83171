"""The ``autoprune`` command: a thin layer over the Python API.

Every user error is printed as one line (``autoprune: error: ...``) with exit
status 2; ``--debug`` shows the traceback instead.

Example:
    $ autoprune inspect --task fashion-cnn
    $ autoprune train --task fashion-cnn
    $ autoprune train --task my_task.py:task
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from autoprune._table import format_table
from autoprune.errors import AutopruneError


def _parse_option(text: str) -> tuple[str, object]:
    import yaml

    key, sep, value = text.partition("=")
    if not sep or not key:
        raise AutopruneError(f"--task-option must look like KEY=VALUE (e.g. train_size=2000). Got {text!r} instead.")
    return key.replace("-", "_"), yaml.safe_load(value)


def _task_from_args(args):
    from autoprune.tasks import get_task

    options = dict(_parse_option(o) for o in args.task_option or [])
    task = get_task(args.task, **options)
    if getattr(args, "epochs", None) is not None:
        task.epochs = args.epochs
    return task


def _add_task_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", required=True, help="built-in task name or path/to/file.py:function")
    parser.add_argument(
        "--task-option",
        action="append",
        metavar="KEY=VALUE",
        help="option for a built-in task's factory, e.g. train_size=2000 (repeatable)",
    )


def _add_latency_arguments(parser: argparse.ArgumentParser) -> None:
    from autoprune.introspect._latency import DEFAULT_BATCH_SIZE, DEFAULT_THREADS

    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="latency batch size (default %(default)s)")
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS, help="torch threads for latency (default %(default)s)")
    parser.add_argument("--repeats", type=int, default=50, help="timed repeats (default %(default)s)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed warm-up runs (default %(default)s)")


def _add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", default="loky", choices=["loky", "dask"],
                        help="where parallel work runs: local processes, or a Dask cluster (default %(default)s)")
    parser.add_argument("--scheduler", default=None,
                        help="Dask scheduler address, e.g. tcp://10.0.0.5:8786 (default: a local Dask cluster)")


def _add_pick_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rule", default="best", choices=["best", "smallest", "knee"],
                        help="how the final model is picked (default %(default)s)")
    parser.add_argument("--top", type=int, default=3, help="front candidates fine-tuned fully (default %(default)s)")
    parser.add_argument("--tolerance", type=float, default=0.005,
                        help="metric tolerance of the 'smallest' rule (default %(default)s)")


# ----------------------------------------------------------------------------- commands


def cmd_tasks(args) -> int:
    from autoprune.tasks import available_tasks

    rows = [{"task": name, "description": text} for name, text in available_tasks().items()]
    print(format_table(rows))
    return 0


def cmd_train(args) -> int:
    from autoprune.checkpoints import dense_model

    task = _task_from_args(args)
    start = time.perf_counter()
    dense = dense_model(task, seed=args.seed, retrain=args.retrain, progress=not args.quiet)
    info = dense.info
    source = "loaded from cache" if info.get("cached") else f"trained in {info['train_seconds']:.1f} s"
    print(f"Task {task.name} (seed {args.seed}): dense model {source}")
    print(f"  validation {task.metric_name}: {info['val_metric']:.4f}")
    print(f"  test {task.metric_name}:       {info['test_metric']:.4f}")
    print(f"  checkpoint: {info['path']}")
    print(f"  wall time: {time.perf_counter() - start:.1f} s")
    return 0


def cmd_inspect(args) -> int:
    from autoprune.introspect import measure_latency, profile_model

    task = _task_from_args(args)
    model = task.new_model()
    profile = profile_model(model, task.example_input)
    latency = measure_latency(
        model, task.example_input, batch_size=args.batch_size, threads=args.threads,
        repeats=args.repeats, warmup=args.warmup,
    )
    if args.json:
        out = {
            "task": task.name,
            "layers": profile.to_frame().to_dict(orient="records"),
            "params": profile.params,
            "macs": profile.macs,
            "bytes": profile.bytes,
            "latency": latency.as_dict(),
        }
        print(json.dumps(out, indent=2))
        return 0
    frame = profile.to_frame()
    rows = [
        {
            "layer": r.layer,
            "type": r.type,
            "weight shape": r.weight_shape,
            "params": int(r.params),
            "param share": f"{r.param_share:.1%}",
            "MACs": int(r.macs),
            "MAC share": f"{r.mac_share:.1%}",
        }
        for r in frame.itertuples()
    ]
    print(f"Task {task.name}: {task.description or ''}".rstrip(": "))
    print(format_table(rows))
    print()
    print(f"Parameters:   {profile.params:,} (all parameters; prunable layers hold {int(frame.params.sum()):,})")
    print(f"MACs:         {profile.macs:,} per input")
    print(f"Bytes (fp32): {profile.bytes:,} ({profile.bytes / 2**20:.2f} MiB, state_dict tensors)")
    print(f"CPU latency:  {latency}")
    return 0


def _parse_grid(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise AutopruneError(f"--grid must be comma-separated numbers in (0, 1), e.g. 0.1,0.3,0.5. Got {text!r} instead.") from None


def cmd_sensitivity(args) -> int:
    from pathlib import Path

    from autoprune.checkpoints import dense_model
    from autoprune.sensitivity import analyse_sensitivity

    task = _task_from_args(args)
    dense = dense_model(task, seed=args.seed, progress=not args.quiet)
    sens = analyse_sensitivity(
        dense.model, task, criterion=args.criterion, granularity=args.granularity, grid=_parse_grid(args.grid),
        val_items=args.val_items, n_jobs=args.n_jobs, cache=not args.no_cache, seed=args.seed, progress=not args.quiet,
        backend=args.backend, scheduler=args.scheduler,
    )
    out = Path(args.out or Path("results/runs") / task.name / "sensitivity")
    paths = sens.save(out, tolerance=args.tolerance)
    ranking = sens.ranking()
    caps, tiers = sens.caps(args.tolerance, interpolate=True), sens.tiers()
    unit = "layer" if sens.granularity == "unstructured" else "group"
    rows = [
        {"rank": int(r.rank), unit: r.layer, "mean drop": float(r.mean_drop), "max drop": float(r.max_drop),
         f"cap (drop <= {args.tolerance:g})": caps[r.layer], "tier": tiers[r.layer], "failed": int(r.failed)}
        for r in ranking.itertuples()
    ]
    print(f"Sensitivity of {task.name} ({sens.granularity}, {sens.criterion}; grid {', '.join(f'{g:g}' for g in sens.grid)}; "
          f"dense validation {sens.metric_name} {sens.dense_metric:.4f} on {args.val_items} items)")
    print(format_table(rows))
    print(f"\n{sens.total_points} points in {sens.seconds:.1f} s ({sens.cached_points} from cache, n_jobs={args.n_jobs})")
    for name, path in paths.items():
        print(f"  {name}: {path}")
    return 0


def _print_search_result(result) -> None:
    ctx = result.context
    trials, front = result.trials, result.front
    print(f"\nSearch on {ctx.task.name}: " + "; ".join(ctx.describe_limits()))
    counts = trials.groupby("fidelity").size().to_dict() if not trials.empty else {}
    failed = int((trials.state == "FAIL").sum()) if not trials.empty else 0
    print(f"  {int((trials.state == 'COMPLETE').sum())} trials complete ("
          + ", ".join(f"{v} {k}" for k, v in counts.items() if k) + f"), {failed} failed, {result.seconds:.0f} s")
    print(f"  dense validation {ctx.task.metric_name}: {ctx.dense_info['val_metric']:.4f}")
    if front.empty:
        print("  no feasible fine-tuned trial yet: run more trials or loosen the budget")
    else:
        rows = [
            {"trial": int(r.number), f"val {ctx.task.metric_name}": float(r.val_metric), "cost/limit": float(r.cost),
             "params": int(r.params), "MACs": int(r.macs), "bytes": int(r.bytes), "granularity": r.granularity,
             "scope": r.scope, "criterion": r.criterion, "schedule": r.schedule, "seed": r.seed or ""}
            for r in front.itertuples()
        ]
        print("  Pareto front (feasible, fine-tuned):")
        print("\n".join("    " + line for line in format_table(rows).splitlines()))
        best = result.best
        print(f"  best feasible: trial {int(best.number)}, validation {ctx.task.metric_name} {best.val_metric:.4f} "
              f"({best.val_metric - ctx.dense_info['val_metric']:+.4f} vs dense)")
    print(f"  run directory: {result.run_dir}")


def cmd_search(args) -> int:
    from autoprune.search import search

    result = search(
        args.task, args.budget, space=args.space, n_trials=args.trials, out=args.out, storage=args.storage,
        study_name=args.study, seed=args.seed, n_jobs=args.n_jobs, sensitivity=not args.no_sensitivity,
        latency_batch_size=args.latency_batch_size, latency_threads=args.latency_threads,
        task_options=dict(_parse_option(o) for o in args.task_option or []), progress=not args.quiet,
        backend=args.backend, scheduler=args.scheduler, device=args.device,
    )
    _print_search_result(result)
    if args.no_finalize:
        return 0
    return _finalize_and_report(result, args)


def _finalize_and_report(result_or_dir, args) -> int:
    from autoprune.errors import RunError
    from autoprune.report import build_report, finalize

    try:
        summary = finalize(result_or_dir, rule=args.rule, top=args.top, tolerance=args.tolerance, progress=not args.quiet)
    except RunError as exc:
        print(f"autoprune: no final model: {exc}", file=sys.stderr)
        summary = None
    run_dir = result_or_dir if not hasattr(result_or_dir, "run_dir") else result_or_dir.run_dir
    paths = build_report(run_dir)
    if summary is not None:
        metric = summary["metric"]
        print(f"\nFinal model (trial {summary['chosen_trial']}, rule {summary['rule']}): test {metric} "
              f"{summary['test_metric']:.4f} (dense {summary['dense']['test_metric']:.4f}); "
              f"{summary['final']['params']:,} non-zero params (dense {summary['dense']['params']:,}), "
              f"{summary['final']['bytes']:,} bytes on disk")
        for check in summary["budget_checks"]:
            print(f"  {check['budget']}: measured {check['value']:,.6g} from the saved files, limit {check['limit']:,.6g}: "
                  + ("met" if check["met"] else "NOT MET"))
    print(f"Report: {paths['html']} (and {paths['markdown'].name})")
    return 0


def cmd_report(args) -> int:
    from pathlib import Path

    from autoprune.report import build_report, export_tables
    from autoprune.search import open_run

    run_dir = Path(args.run_dir)
    if args.finalize:
        return _finalize_and_report(open_run(run_dir), args)
    try:
        export_tables(run_dir, open_run(run_dir).study)  # fresh tables when the study is reachable
    except Exception as exc:  # the report can still be built from the files already there
        print(f"autoprune: using the tables already in {run_dir} ({type(exc).__name__}: {exc})", file=sys.stderr)
    paths = build_report(run_dir)
    for item in paths["missing"]:
        print(f"  missing: {item}")
    print(f"Report: {paths['html']} (and {paths['markdown'].name})")
    return 0


def cmd_worker(args) -> int:
    from autoprune.search import worker_main

    finished = worker_main(args.out or ".", args.storage, args.study, device=args.device)
    print(f"worker finished {finished} trial(s) of study {args.study!r}")
    return 0


def cmd_bench(args) -> int:
    from dataclasses import replace

    if args.suite == "engine":
        from autoprune.bench import engine

        path = engine.run(args.out or "results/engine", epochs=1.0 if args.epochs is None else args.epochs)
        print(f"Wrote {path}")
        return 0
    if args.suite != "compare":
        raise AutopruneError(f"Unknown benchmark suite {args.suite!r}; expected one of: engine, compare.")
    from autoprune.bench import compare

    config = compare.quick() if args.quick else compare.full()
    config = config.select(tasks=args.task, methods=args.method)
    seeds = None
    if args.seeds:
        try:
            seeds = tuple(int(v) for v in args.seeds.split(",") if v.strip())
        except ValueError:
            seeds = ()
        if not seeds or any(s < 0 for s in seeds):
            raise AutopruneError(f"--seeds must be comma-separated integers >= 0, e.g. 0,1,2. Got {args.seeds!r} instead.")
    overrides = {"out": args.out, "seeds": seeds, "trials": args.trials}
    config = replace(config, **{k: v for k, v in overrides.items() if v is not None})
    if args.epochs is not None:
        config = replace(config, epochs=args.epochs, tasks=tuple(replace(p, epochs=None) for p in config.tasks))
    if args.trials is not None:
        config = replace(config, tasks=tuple(replace(p, trials=None) for p in config.tasks))
    estimate = compare.estimate_seconds(config)
    if args.estimate:
        for plan in config.tasks:
            s = config.settings(plan)
            minutes = f"~{estimate[plan.name] / 60:.0f} min" if plan.name in estimate else "no estimate"
            print(f"{plan.name}: {', '.join(plan.budgets)}; {len(config.methods_of(plan))} methods, seeds "
                  f"{','.join(map(str, config.seeds))}, {s.epochs:g} epoch(s), {s.trials} trials: {minutes}")
        print(f"Total: ~{sum(estimate.values()) / 60:.0f} min on an idle 2-core machine; results in {config.out}")
        return 0
    paths = compare.run(config, progress=not args.quiet)
    for task, files in paths.items():
        print(f"{task}: {files['markdown']}, {files['csv'].name}, {files['plot'].name}")
    return 0


def cmd_apply(args) -> int:
    import copy
    from dataclasses import replace
    from pathlib import Path

    from autoprune.apply import builder_path, save_pruned
    from autoprune.budgets import measure_costs
    from autoprune.checkpoints import dense_model
    from autoprune.pipeline import prune_and_finetune
    from autoprune.policy_file import check_fingerprint, load_policy
    from autoprune.training import evaluate

    document = load_policy(args.policy)  # validated before anything is computed or written
    task = _task_from_args(args)
    if args.checkpoint:
        task = replace(task, checkpoint=Path(args.checkpoint))
    dense = dense_model(task, seed=args.seed, progress=not args.quiet)
    if document.fingerprint:
        check_fingerprint(document.fingerprint, dense.model)
    policy = document.policy
    epochs = None if args.finetune else 0
    outcome = prune_and_finetune(copy.deepcopy(dense.model), policy, task, epochs=epochs, progress=not args.quiet)
    val = evaluate(outcome.model, task.val_data, task).metric
    test = evaluate(outcome.model, task.test_data, task).metric
    costs = measure_costs(outcome.model, task.example_input, scope=task.cost_modules)
    document.results = {**document.results, "applied": {
        "checkpoint": str(args.checkpoint or dense.info.get("path")), "finetuned": bool(args.finetune),
        "val_metric": val, "test_metric": test, "params": costs.params, "macs": costs.macs, "bytes": costs.bytes}}
    document.provenance.setdefault("builder", builder_path(task.build_model))
    document.provenance.setdefault("input_shape", list(task.example_input.shape))
    out = save_pruned(outcome.model, args.out, document, history=outcome.history)
    metric = task.metric_name
    print(f"Applied {args.policy} to {task.name} ({'fine-tuned' if args.finetune else 'pruned only'}): "
          f"validation {metric} {val:.4f}, test {metric} {test:.4f} (dense test {dense.info['test_metric']:.4f})")
    print(f"  {costs.params:,} non-zero params, {costs.macs:,} MACs, {(out / 'model.safetensors').stat().st_size:,} bytes on disk")
    print(f"  wrote {out / 'policy.yaml'} and {out / 'model.safetensors'}")
    return 0


def cmd_export(args) -> int:
    from pathlib import Path

    from autoprune.apply import load_pruned
    from autoprune.export import export_model
    from autoprune.training import evaluate

    task = _task_from_args(args) if args.task else None
    model = load_pruned(args.model_dir, build_model=task.build_model if task else None,
                        example_input=task.example_input if task else None)
    example = task.example_input if task else _example_from_policy(args.model_dir)
    metric = None
    if task is not None:
        class _Wrapped(__import__("torch").nn.Module):
            def __init__(self, run):
                super().__init__()
                self.run = run

            def forward(self, x):
                return self.run(x)

        def metric(run):
            return evaluate(_Wrapped(run), task.test_data, task).metric

    rows = export_model(model, example, Path(args.out), formats=args.format or ["torchscript"], quantize=args.quantize,
                        metric=metric)
    if metric is not None:
        rows.insert(0, {"format": "pytorch", "precision": "fp32", "file": str(Path(args.model_dir) / "model.safetensors"),
                        "bytes": (Path(args.model_dir) / "model.safetensors").stat().st_size, "max_abs_diff": 0.0,
                        "parity": True, "metric": evaluate(model, task.test_data, task).metric})
    print(format_table(rows))
    return 0


def _example_from_policy(model_dir):
    import torch

    from autoprune.policy_file import load_policy

    shape = load_policy(__import__("pathlib").Path(model_dir) / "policy.yaml").provenance.get("input_shape")
    if not shape:
        raise AutopruneError("The policy names no input shape; pass --task to export.")
    return torch.zeros(*shape)


DEMO_TASK, DEMO_BUDGET, DEMO_TRIALS = "fashion-cnn", "params=0.1", 40


def cmd_demo(args) -> int:
    """The main job: a real search on Fashion-MNIST, the final fine-tune and the report."""
    print(f"== autoprune demo: {DEMO_TASK} under {DEMO_BUDGET}, {DEMO_TRIALS} trials, then the final model and the report ==",
          flush=True)
    argv = ["search", "--task", DEMO_TASK, "--budget", DEMO_BUDGET, "--trials", str(args.trials or DEMO_TRIALS)]
    if args.out:
        argv += ["--out", args.out]
    return main(argv)


# ----------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="autoprune", description="Find the best pruning policy under a budget.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("tasks", help="list the built-in tasks")
    p.set_defaults(func=cmd_tasks)

    p = sub.add_parser("train", help="train (or load from cache) the dense model of a task")
    _add_task_arguments(p)
    p.add_argument("--seed", type=int, default=0, help="training seed (default %(default)s)")
    p.add_argument("--epochs", type=int, default=None, help="override the task's epochs")
    p.add_argument("--retrain", action="store_true", help="ignore the cache and train again")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("inspect", help="per-layer parameters, MACs, bytes and CPU latency")
    _add_task_arguments(p)
    _add_latency_arguments(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("sensitivity", help="prune each layer alone at a grid of amounts; rank layers")
    _add_task_arguments(p)
    p.add_argument("--criterion", default="l1", help="pruning criterion (default %(default)s)")
    p.add_argument("--granularity", default="unstructured", choices=["unstructured", "structured"])
    p.add_argument("--grid", default="0.1,0.3,0.5,0.7,0.9", help="amounts to try (default %(default)s)")
    p.add_argument("--tolerance", type=float, default=0.02, help="metric drop allowed for a layer's cap (default %(default)s)")
    p.add_argument("--val-items", type=int, default=2000, help="validation items evaluated (default %(default)s)")
    p.add_argument("--n-jobs", type=int, default=1, help="parallel workers (default %(default)s)")
    _add_cluster_arguments(p)
    p.add_argument("--no-cache", action="store_true", help="do not read or write the cache")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="output directory (default results/runs/TASK/sensitivity)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_sensitivity)

    p = sub.add_parser("search", help="search pruning policies under a budget (resumes an existing run)")
    _add_task_arguments(p)
    p.add_argument("--budget", action="append", required=True, metavar="KIND=VALUE",
                   help="params=0.1, macs=50%%, size=0.4MB, latency=0.5 or latency=5ms (repeatable)")
    p.add_argument("--trials", type=int, default=40, help="finished trials wanted (default %(default)s)")
    p.add_argument("--space", default="default", help="search space name or YAML file (default %(default)s)")
    p.add_argument("--out", default=None, help="run directory (default results/runs/TASK-BUDGET)")
    p.add_argument("--storage", default=None, help="Optuna storage URL (default: a journal file in the run directory)")
    p.add_argument("--study", default=None, help="study name (default: the run directory's name)")
    p.add_argument("--n-jobs", type=int, default=1, help="parallel worker processes (default %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-sensitivity", action="store_true", help="no sensitivity analysis: no caps, no seed policies")
    p.add_argument("--latency-batch-size", type=int, default=64, help="batch size of latency budgets (default %(default)s)")
    p.add_argument("--latency-threads", type=int, default=1, help="threads of latency budgets (default %(default)s)")
    _add_cluster_arguments(p)
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N: where models train and latency is measured")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--no-finalize", action="store_true", help="stop after the trials: no final fine-tune, no report")
    _add_pick_arguments(p)
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("report", help="(re)build the report of a run directory")
    p.add_argument("run_dir", help="the run directory")
    p.add_argument("--finalize", action="store_true", help="pick, fine-tune fully and test the final model first")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_pick_arguments(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("worker", help="join an existing study and run trials until none is left")
    p.add_argument("--storage", default=None, help="the study's storage URL (default: the journal in --out)")
    p.add_argument("--study", required=True, help="study name")
    p.add_argument("--out", default=None, help="run directory (holds the journal when no --storage is given)")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: the study's)")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("apply", help="apply a policy file to a dense checkpoint and write the pruned model")
    p.add_argument("policy", help="policy file (YAML or JSON)")
    _add_task_arguments(p)
    p.add_argument("--checkpoint", default=None, help="state_dict of the dense model (default: the cached dense model)")
    p.add_argument("--seed", type=int, default=0, help="seed of the dense model trained or taken from the cache (default 0)")
    p.add_argument("--finetune", action="store_true", help="fine-tune with the policy's recipe and schedule")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_apply)

    p = sub.add_parser("export", help="export a pruned model directory: TorchScript, ONNX, int8")
    p.add_argument("model_dir", help="a directory written by apply or search (policy.yaml + model.safetensors)")
    p.add_argument("--format", action="append", choices=["torchscript", "onnx"], help="repeatable (default torchscript)")
    p.add_argument("--quantize", action="store_true", help="also export dynamic int8 variants")
    p.add_argument("--task", default=None, help="task, to report each variant's test metric")
    p.add_argument("--task-option", action="append", metavar="KEY=VALUE")
    p.add_argument("--out", required=True, help="output directory")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("bench", help="run a benchmark suite (engine, compare); figures go to results/")
    p.add_argument("suite", nargs="?", default="engine", choices=["engine", "compare"],
                   help="engine: criteria on real data; compare: autoprune against the baselines (default %(default)s)")
    p.add_argument("--out", default=None,
                   help="output directory (default results/engine, results/benchmarks, or results/benchmarks/quick)")
    p.add_argument("--epochs", type=float, default=None, help="fine-tuning epochs (default: the suite's)")
    p.add_argument("--quick", action="store_true", help="compare: the quick preset (one seed, two budgets, ~12 min)")
    p.add_argument("--task", action="append", help="compare: only this task (repeatable)")
    p.add_argument("--method", action="append", help="compare: only this method (repeatable), e.g. lamp")
    p.add_argument("--seeds", default=None, help="compare: comma-separated seeds (default: the preset's)")
    p.add_argument("--trials", type=int, default=None, help="compare: search trials (default: the preset's)")
    p.add_argument("--estimate", action="store_true", help="compare: print the estimated runtime and stop")
    p.add_argument("--quiet", action="store_true", help="no progress bar or per-cell lines")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("demo", help="the main job: search fashion-cnn under params=0.1, finalize, report")
    p.add_argument("--trials", type=int, default=None, help=f"trials (default {DEMO_TRIALS})")
    p.add_argument("--out", default=None, help="run directory (default results/runs/fashion-cnn-params0.1)")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``autoprune`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = args.debug or bool(os.environ.get("AUTOPRUNE_DEBUG"))
    try:
        return args.func(args)
    except AutopruneError as exc:
        if debug:
            raise
        print(f"autoprune: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("autoprune: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
