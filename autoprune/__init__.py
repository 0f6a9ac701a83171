"""autoprune: find the best pruning policy for a PyTorch model under a budget.

The public API, re-exported here. Names whose modules need Optuna or pandas
(the search, the final model, the report, the sensitivity analysis) are loaded
on first use, so ``import autoprune`` stays light.

Example:
    >>> import autoprune
    >>> task = autoprune.get_task("digits-mlp")
    >>> autoprune.profile_model(task.new_model(), task.example_input).params
    17226
    >>> autoprune.Policy.uniform(["fc1", "fc2"], 0.5).layers["fc2"].sparsity
    0.5
"""

import sys
from typing import TYPE_CHECKING

from autoprune import _lazy
from autoprune.apply import apply_policy, load_pruned, save_pruned
from autoprune.budgets import Budget
from autoprune.errors import (
    AutopruneError,
    BudgetError,
    DataError,
    ParameterError,
    PolicyError,
    PruningError,
    RunError,
    SearchSpaceError,
    TaskError,
    TrainingDiverged,
)
from autoprune.export import export_model
from autoprune.introspect import measure_latency, profile_model, prunable_layers
from autoprune.policy import Policy
from autoprune.policy_file import load_policy, save_policy
from autoprune.tasks import Task, available_tasks, get_task, register_task
from autoprune.training import (
    TrainingSettings,
    dense_model,
    evaluate,
    train_model,
    train_with_policy,
)

if TYPE_CHECKING:  # what the lazy names are, for type checkers and IDEs
    from autoprune.final import FinalSummary, finalize
    from autoprune.report import build_report
    from autoprune.search import SearchOptions, SearchResult, SearchSpace, open_run, search
    from autoprune.sensitivity import SensitivityOptions, analyse_sensitivity

__version__ = "0.1.0"

__all__ = [
    "AutopruneError",
    "Budget",
    "BudgetError",
    "DataError",
    "FinalSummary",
    "ParameterError",
    "Policy",
    "PolicyError",
    "PruningError",
    "RunError",
    "SearchOptions",
    "SearchResult",
    "SearchSpace",
    "SearchSpaceError",
    "SensitivityOptions",
    "Task",
    "TaskError",
    "TrainingDiverged",
    "TrainingSettings",
    "__version__",
    "analyse_sensitivity",
    "apply_policy",
    "available_tasks",
    "build_report",
    "dense_model",
    "evaluate",
    "export_model",
    "finalize",
    "get_task",
    "load_policy",
    "load_pruned",
    "measure_latency",
    "open_run",
    "profile_model",
    "prunable_layers",
    "register_task",
    "save_policy",
    "save_pruned",
    "search",
    "train_model",
    "train_with_policy",
]


def __getattr__(name: str):
    return _lazy.load(sys.modules[__name__], name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_lazy.LAZY))


_lazy.install(sys.modules[__name__])
