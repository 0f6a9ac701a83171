"""Arguments every command family shares: the task, latency conditions, the cluster, the pick rule.

Numbers and paths given on the command line are checked by :func:`check_args`
before any command starts working, so a wrong one costs nothing.

Example:
    >>> parse_option("train_size=2000")
    ('train_size', 2000)
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from autoprune._validation import Interval, shorten, validate
from autoprune.errors import AutopruneError, ParameterError

MAX_SEED = 2**32  # seeds on the command line: [0, 2**32), what every library's generator takes
MAX_TRAIN_EPOCHS = 10_000
# The declared constraints of the numeric flags, by their argparse attribute.
FLAGS = {
    "trials": Interval(int, 1, 100_000),
    "top": Interval(int, 1, 1000),
    "n_jobs": Interval(int, 1, 1024),
    "val_items": Interval(int, 1, 10_000_000),
    "batch_size": Interval(int, 1, 65_536),
    "threads": Interval(int, 1, 1024),
    "repeats": Interval(int, 1, 100_000),
    "warmup": Interval(int, 0, 100_000),
    "latency_batch_size": Interval(int, 1, 65_536),
    "latency_threads": Interval(int, 1, 1024),
    "seed": Interval(int, 0, MAX_SEED - 1),
    "tolerance": Interval(float, 0, 1, noun="a number"),
    "trial": Interval(int, 0, None),
}
TRAIN_EPOCHS = Interval(int, 1, MAX_TRAIN_EPOCHS)  # --epochs of the commands that train
BENCH_EPOCHS = Interval(float, 0, 1000, noun="a number")  # --epochs of bench: fine-tuning epochs
FINETUNE_EPOCHS = {"bench": BENCH_EPOCHS, "pick": BENCH_EPOCHS}  # commands whose --epochs fine-tune


def check_flag(attribute: str, value, constraint) -> None:
    """``value`` of the flag stored as ``attribute``, checked: ParameterError naming ``--flag``."""
    validate(attribute, value, constraint, error=ParameterError, kind="flag")


def check_out_dir(path) -> None:
    """Refuse an output directory that is a file, lies under a file, or cannot be written.

    Example:
        >>> import tempfile, pathlib
        >>> f = pathlib.Path(tempfile.mkdtemp()) / "f"
        >>> _ = f.write_text("x")
        >>> check_out_dir(f / "run")
        Traceback (most recent call last):
        ...
        autoprune.errors.AutopruneError: --out .../f/run cannot be created: .../f is a file, not a directory. Choose another --out.
    """
    out = Path(path)
    shown = shorten(str(out), text=True)
    if out.exists() and not out.is_dir():
        raise AutopruneError(f"--out {shown} is a file, not a directory. Choose another --out.")
    parent = out
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        raise AutopruneError(
            f"--out {shown} cannot be created: {shorten(str(parent), text=True)} is a file, not a "
            "directory. Choose another --out."
        )
    if parent.exists() and not os.access(parent, os.W_OK | os.X_OK):
        raise AutopruneError(
            f"--out {shown} cannot be written: {shorten(str(parent), text=True)} is read-only "
            "(permissions, or a read-only file system). Choose another --out."
        )


def check_args(args: argparse.Namespace) -> None:
    """Check the numbers and the output directory of any command, before it starts working."""
    command = getattr(args, "command", None)
    for attribute, constraint in FLAGS.items():
        value = getattr(args, attribute, None)
        every_core = attribute == "n_jobs" and command == "sensitivity" and value == -1
        if value is not None and not every_core:
            check_flag(attribute, value, constraint)
    epochs = getattr(args, "epochs", None)
    if epochs is not None:
        check_flag("epochs", epochs, FINETUNE_EPOCHS.get(command, TRAIN_EPOCHS))
    out = getattr(args, "out", None)
    if out:
        check_out_dir(out)


def parse_option(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` of ``--task-option``; the value is read as YAML (``2000``, ``[1, 2]``, ``x``)."""
    import yaml

    from autoprune._io import PARSE_ERRORS, describe_parse_error
    from autoprune._yaml import load_yaml

    key, sep, value = text.partition("=")
    key = key.strip().replace("-", "_")
    if not sep or not key.isidentifier():
        raise ParameterError(
            f"--task-option must look like KEY=VALUE (e.g. train_size=2000). Got {shorten(text)} instead."
        )
    try:
        return key, load_yaml(value)
    except (yaml.YAMLError, *PARSE_ERRORS) as exc:
        raise ParameterError(
            f"--task-option {key}: the value {shorten(value)} cannot be read: {describe_parse_error(exc)}."
        ) from exc


def task_from_args(args):
    from autoprune.tasks import get_task

    options = dict(parse_option(o) for o in args.task_option or [])
    task = get_task(args.task, **options)
    if getattr(args, "epochs", None) is not None:
        check_flag("epochs", args.epochs, TRAIN_EPOCHS)
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
        "--top",
        type=int,
        default=1,
        help="recovered candidates trained back fully before the pick (default %(default)s)",
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
        raise ParameterError(
            f"--grid must be comma-separated numbers in (0, 1), e.g. 0.1,0.3,0.5. Got {shorten(text)} instead."
        ) from None
