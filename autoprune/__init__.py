"""autoprune: find the best pruning policy for a PyTorch model under a budget.

Example:
    >>> import autoprune
    >>> task = autoprune.get_task("digits-mlp")
    >>> autoprune.profile_model(task.new_model(), task.example_input).params
    17226
"""

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
    "available_tasks",
    "dense_model",
    "evaluate",
    "get_task",
    "measure_latency",
    "profile_model",
    "prunable_layers",
    "register_task",
    "train_model",
]
