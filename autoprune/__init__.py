"""autoprune: find the best pruning policy for a PyTorch model under a budget.

Example:
    >>> import autoprune
    >>> task = autoprune.get_task("digits-mlp")
    >>> autoprune.profile_model(task.new_model(), task.example_input).params
    17226
"""

from autoprune.apply import apply_policy, load_pruned, save_pruned
from autoprune.checkpoints import dense_model
from autoprune.errors import (
    AutopruneError,
    BudgetError,
    DataError,
    PolicyError,
    PruningError,
    RunError,
    SearchSpaceError,
    TaskError,
)
from autoprune.introspect import measure_latency, profile_model, prunable_layers
from autoprune.tasks import Task, available_tasks, get_task, register_task
from autoprune.training import evaluate, train_model

__version__ = "0.1.0"


def search(task, budget, **kwargs):
    """Search pruning policies under a budget (see :func:`autoprune.search.search`; imports Optuna)."""
    from autoprune.search import search as run_search

    return run_search(task, budget, **kwargs)


def finalize(result_or_run_dir, **kwargs):
    """Pick, fine-tune fully and test the final model of a search (see :func:`autoprune.report.finalize`)."""
    from autoprune.report import finalize as run_finalize

    return run_finalize(result_or_run_dir, **kwargs)


def build_report(run_dir):
    """Write report.md and report.html of a run directory (see :func:`autoprune.report.build_report`)."""
    from autoprune.report import build_report as run_build

    return run_build(run_dir)


__all__ = [
    "AutopruneError",
    "BudgetError",
    "DataError",
    "PolicyError",
    "PruningError",
    "RunError",
    "SearchSpaceError",
    "Task",
    "TaskError",
    "__version__",
    "apply_policy",
    "available_tasks",
    "build_report",
    "dense_model",
    "evaluate",
    "finalize",
    "get_task",
    "load_pruned",
    "measure_latency",
    "profile_model",
    "prunable_layers",
    "register_task",
    "save_pruned",
    "search",
    "train_model",
]
