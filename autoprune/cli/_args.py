"""Arguments every command family shares: the task, latency conditions, the cluster, the pick rule.

Example:
    >>> parse_option("train_size=2000")
    ('train_size', 2000)
"""

from __future__ import annotations

import argparse

from autoprune.errors import AutopruneError


def parse_option(text: str) -> tuple[str, object]:
    import yaml

    key, sep, value = text.partition("=")
    if not sep or not key:
        raise AutopruneError(
            f"--task-option must look like KEY=VALUE (e.g. train_size=2000). Got {text!r} instead."
        )
    return key.replace("-", "_"), yaml.safe_load(value)


def task_from_args(args):
    from autoprune.tasks import get_task

    options = dict(parse_option(o) for o in args.task_option or [])
    task = get_task(args.task, **options)
    if getattr(args, "epochs", None) is not None:
        task.epochs = args.epochs
    return task


def add_task_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--task", required=True, help="built-in task name or path/to/file.py:function"
    )
    parser.add_argument(
        "--task-option",
        action="append",
        metavar="KEY=VALUE",
        help="option for a built-in task's factory, e.g. train_size=2000 (repeatable)",
    )


def add_latency_arguments(parser: argparse.ArgumentParser) -> None:
    from autoprune.introspect._latency import DEFAULT_BATCH_SIZE, DEFAULT_THREADS

    parser.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        help="latency batch size (default %(default)s)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=DEFAULT_THREADS,
        help="torch threads for latency (default %(default)s)",
    )
    parser.add_argument(
        "--repeats", type=int, default=50, help="timed repeats (default %(default)s)"
    )
    parser.add_argument(
        "--warmup", type=int, default=10, help="untimed warm-up runs (default %(default)s)"
    )


def add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend",
        default="loky",
        choices=["loky", "dask"],
        help="where parallel work runs: local processes, or a Dask cluster (default %(default)s)",
    )
    parser.add_argument(
        "--scheduler",
        default=None,
        help="Dask scheduler address, e.g. tcp://10.0.0.5:8786 (default: a local Dask cluster)",
    )


def add_pick_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rule",
        default="best",
        choices=["best", "smallest", "knee"],
        help="how the final model is picked (default %(default)s)",
    )
    parser.add_argument(
        "--top", type=int, default=3, help="front candidates fine-tuned fully (default %(default)s)"
    )
    parser.add_argument(
        "--tolerance",
        type=float,
        default=0.005,
        help="metric tolerance of the 'smallest' rule (default %(default)s)",
    )


def parse_grid(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise AutopruneError(
            f"--grid must be comma-separated numbers in (0, 1), e.g. 0.1,0.3,0.5. Got {text!r} instead."
        ) from None
