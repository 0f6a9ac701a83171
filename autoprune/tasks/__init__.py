"""Tasks: what a user hands autoprune (model builder, data, loss, metric).

Example:
    >>> from autoprune.tasks import get_task
    >>> get_task("digits-mlp").metric_name
    'accuracy'
"""

from autoprune.tasks._data import iterate_batches, take
from autoprune.tasks._metrics import get_metric
from autoprune.tasks._registry import available_tasks, get_task, register_task
from autoprune.tasks._task import Task, check_model_runs

__all__ = [
    "Task",
    "available_tasks",
    "check_model_runs",
    "get_metric",
    "get_task",
    "iterate_batches",
    "register_task",
    "take",
]
