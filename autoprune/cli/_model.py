"""Commands about a task and its dense model: tasks, train, inspect, sensitivity."""

from __future__ import annotations

import json
import time

from autoprune._table import format_table
from autoprune.cli import _train
from autoprune.cli._args import (
    add_cluster_arguments,
    add_latency_arguments,
    add_task_arguments,
    parse_grid,
    task_from_args,
)


def cmd_tasks(args) -> int:
    from autoprune.tasks import available_tasks

    rows = [{"task": name, "description": text} for name, text in available_tasks().items()]
    print(format_table(rows))
    return 0


def cmd_train(args) -> int:
    from autoprune.training import dense_model

    task = task_from_args(args)
    start = time.perf_counter()
    dense = dense_model(task, seed=args.seed, retrain=args.retrain, progress=not args.quiet)
    info = dense.info
    source = (
        "loaded from cache" if info.get("cached") else f"trained in {info['train_seconds']:.1f} s"
    )
    print(f"Task {task.name} (seed {args.seed}): dense model {source}")
    print(f"  validation {task.metric_name}: {info['val_metric']:.4f}")
    print(f"  test {task.metric_name}:       {info['test_metric']:.4f}")
    print(f"  checkpoint: {info['path']}")
    print(f"  wall time: {time.perf_counter() - start:.1f} s")
    return 0


def cmd_inspect(args) -> int:
    from autoprune.introspect import measure_latency, profile_model

    task = task_from_args(args)
    model = task.new_model()
    profile = profile_model(model, task.example_input)
    latency = measure_latency(
        model,
        task.example_input,
        batch_size=args.batch_size,
        threads=args.threads,
        repeats=args.repeats,
        warmup=args.warmup,
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
    print(
        f"Parameters:   {profile.params:,} (all parameters; prunable layers hold {int(frame.params.sum()):,})"
    )
    print(f"MACs:         {profile.macs:,} per input")
    print(f"Bytes (fp32): {profile.bytes:,} ({profile.bytes / 2**20:.2f} MiB, state_dict tensors)")
    print(f"CPU latency:  {latency}")
    return 0


def cmd_sensitivity(args) -> int:
    from pathlib import Path

    from autoprune.sensitivity import SensitivityOptions, analyse_sensitivity
    from autoprune.training import dense_model

    task = task_from_args(args)
    dense = dense_model(task, seed=args.seed, progress=not args.quiet)
    sens = analyse_sensitivity(
        dense.model,
        task,
        criterion=args.criterion,
        granularity=args.granularity,
        grid=parse_grid(args.grid),
        val_items=args.val_items,
        seed=args.seed,
        options=SensitivityOptions(
            n_jobs=args.n_jobs,
            backend=args.backend,
            scheduler=args.scheduler,
            cache=not args.no_cache,
            progress=not args.quiet,
        ),
    )
    out = Path(args.out or Path("results/runs") / task.name / "sensitivity")
    paths = sens.save(out, tolerance=args.tolerance)
    ranking = sens.ranking()
    caps, tiers = sens.caps(args.tolerance, interpolate=True), sens.tiers()
    unit = "layer" if sens.granularity == "unstructured" else "group"
    rows = [
        {
            "rank": int(r.rank),
            unit: r.layer,
            "mean drop": float(r.mean_drop),
            "max drop": float(r.max_drop),
            f"cap (drop <= {args.tolerance:g})": caps[r.layer],
            "tier": tiers[r.layer],
            "failed": int(r.failed),
        }
        for r in ranking.itertuples()
    ]
    print(
        f"Sensitivity of {task.name} ({sens.granularity}, {sens.criterion}; grid {', '.join(f'{g:g}' for g in sens.grid)}; "
        f"dense validation {sens.metric_name} {sens.dense_metric:.4f} on {args.val_items} items)"
    )
    print(format_table(rows))
    print(
        f"\n{sens.total_points} points in {sens.seconds:.1f} s ({sens.cached_points} from cache, n_jobs={args.n_jobs})"
    )
    for name, path in paths.items():
        print(f"  {name}: {path}")
    return 0


def register(sub) -> None:
    """Add this module's commands to the ``autoprune`` parser."""
    p = sub.add_parser("tasks", help="list the built-in tasks")
    p.set_defaults(func=cmd_tasks)

    p = sub.add_parser("train", help="train (or load from cache) the dense model of a task")
    add_task_arguments(p)
    p.add_argument("--seed", type=int, default=0, help="training seed (default %(default)s)")
    p.add_argument("--epochs", type=int, default=None, help="override the task's epochs")
    p.add_argument("--retrain", action="store_true", help="ignore the cache and train again")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)
    _train.add_policy_arguments(p)  # train-time pruning: --policy, --out, --lr, --overwrite

    p = sub.add_parser("inspect", help="per-layer parameters, MACs, bytes and CPU latency")
    add_task_arguments(p)
    add_latency_arguments(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser(
        "sensitivity", help="prune each layer alone at a grid of amounts; rank layers"
    )
    add_task_arguments(p)
    p.add_argument("--criterion", default="l1", help="pruning criterion (default %(default)s)")
    p.add_argument("--granularity", default="unstructured", choices=["unstructured", "structured"])
    p.add_argument(
        "--grid", default="0.1,0.3,0.5,0.7,0.9", help="amounts to try (default %(default)s)"
    )
    p.add_argument(
        "--tolerance",
        type=float,
        default=0.02,
        help="metric drop allowed for a layer's cap (default %(default)s)",
    )
    p.add_argument(
        "--val-items",
        type=int,
        default=2000,
        help="validation items evaluated (default %(default)s)",
    )
    p.add_argument("--n-jobs", type=int, default=1, help="parallel workers (default %(default)s)")
    add_cluster_arguments(p)
    p.add_argument("--no-cache", action="store_true", help="do not read or write the cache")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--out", default=None, help="output directory (default results/runs/TASK/sensitivity)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_sensitivity)
