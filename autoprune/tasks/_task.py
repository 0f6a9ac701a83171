"""The Task: everything autoprune needs to know about a user's problem.

A task says how to build the model, which data to train, validate and test on,
which loss to train with and which metric (higher is better) to report. The
search only ever sees the validation split; the test split is read once, for
the final numbers.

Example:
    >>> import torch, autoprune
    >>> X, y = torch.randn(40, 4), torch.randint(0, 2, (40,))
    >>> task = autoprune.Task(
    ...     name="toy",
    ...     build_model=lambda: torch.nn.Linear(4, 2),
    ...     train_data=(X[:30], y[:30]), val_data=(X[30:35], y[30:35]),
    ...     test_data=(X[35:], y[35:]), metric="accuracy",
    ...     example_input=torch.randn(1, 4),
    ... )
    >>> len(task.val_data)
    5
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from autoprune._validation import shorten, validate_fields
from autoprune.errors import TaskError
from autoprune.tasks._checks import check_model_runs, check_task_data
from autoprune.tasks._data import as_dataset, split_off
from autoprune.tasks._identity import callable_identity
from autoprune.tasks._metrics import get_metric, metric_name
from autoprune.tasks._task_fields import TRAINING_FIELDS, check_feature_names, check_task_name


@dataclass
class Task:
    """A model builder, data splits, a loss and a metric.

    ``train_data``, ``val_data`` and ``test_data`` are pairs of tensors ``(X, y)``
    or torch Datasets; they are stored as Datasets. When ``val_data`` is None,
    ``val_fraction`` of the training data is held out (seeded) for validation.
    ``checkpoint`` is a state_dict file of the trained dense model; without it
    autoprune trains the model once (``epochs``, ``lr``, ``batch_size``) and
    caches it. ``cost_modules`` (module-name prefixes) limits the parameters and
    MACs that budgets count, e.g. ``("bert.encoder",)`` for a transformer whose
    embeddings are not to be pruned; by default the whole model counts.
    ``feature_names`` names the input features of a tabular task (one per
    column of its 2-D inputs), so reports of input-feature pruning name them.
    """

    name: str
    build_model: Callable[[], nn.Module]
    train_data: Any
    test_data: Any
    val_data: Any = None
    metric: str | Callable[[torch.Tensor, torch.Tensor], float] = "accuracy"
    example_input: torch.Tensor | None = None
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
    checkpoint: str | Path | None = None
    epochs: int = 5
    lr: float = 1e-3
    batch_size: int = 64
    weight_decay: float = 0.0
    val_fraction: float = 0.1
    split_seed: int = 0
    cost_modules: tuple[str, ...] | None = None
    description: str = ""
    attention: tuple = ()
    feed_forward: tuple = ()
    feature_names: tuple[str, ...] = ()
    spec: str | None = field(default=None, compare=False)
    spec_options: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        check_task_name(self.name)
        if not callable(self.build_model):
            raise TaskError(
                "The 'build_model' field must be a callable that returns a fresh nn.Module. "
                f"Got {type(self.build_model).__name__} instead."
            )
        validate_fields(self, TRAINING_FIELDS, error=TaskError)
        if self.attention or self.feed_forward:
            self.build_model = DeclaredBuilder(self.build_model, self.attention, self.feed_forward)
        get_metric(self.metric)  # validates the metric spec
        self.train_data = as_dataset(self.train_data, "train_data")
        self.test_data = as_dataset(self.test_data, "test_data")
        if self.val_data is None:
            if self.val_fraction <= 0:
                raise TaskError(
                    "The 'val_fraction' field must be in (0, 1) when 'val_data' is not given "
                    f"(a validation split is carved from the training data). Got {shorten(self.val_fraction)} instead."
                )
            n_val = max(1, round(len(self.train_data) * self.val_fraction))
            self.train_data, self.val_data = split_off(self.train_data, n_val, seed=self.split_seed)
        else:
            self.val_data = as_dataset(self.val_data, "val_data")
        if self.example_input is None:
            first_input = self.train_data[0][0]
            self.example_input = torch.as_tensor(first_input).unsqueeze(0)
        if not isinstance(self.example_input, torch.Tensor):
            raise TaskError(
                "The 'example_input' field must be a tensor with a batch dimension, "
                f"e.g. torch.randn(1, *X.shape[1:]). Got {type(self.example_input).__name__} instead."
            )
        self.feature_names = check_feature_names(self.feature_names, self.example_input)
        if self.loss is None:
            self.loss = nn.CrossEntropyLoss()
        if self.checkpoint is not None:
            self.checkpoint = Path(self.checkpoint)

    @property
    def metric_name(self) -> str:
        """The name of the metric, e.g. ``"accuracy"``."""
        return metric_name(self.metric)

    def identity(self) -> dict:
        """What, besides weights and data, decides a cached result: for cache keys.

        Example:
            >>> from autoprune.tasks import get_task
            >>> sorted(get_task("digits-mlp").identity())
            ['loss', 'metric', 'name', 'split']
        """
        return {
            "name": self.name,
            "loss": callable_identity(self.loss),
            "metric": self.metric
            if isinstance(self.metric, str)
            else callable_identity(self.metric),
            "split": [self.val_fraction, self.split_seed],
        }

    def new_model(self) -> nn.Module:
        """Build a fresh model and check it runs on ``example_input`` and has a prunable layer."""
        from autoprune.introspect._layers import PRUNABLE_TYPES, prunable_layers

        try:
            model = self.build_model()
        except Exception as exc:  # user code: report it, do not hide it
            raise TaskError(
                f"build_model of task '{self.name}' raised {type(exc).__name__}: {shorten(exc, text=True)}"
            ) from exc
        if not isinstance(model, nn.Module):
            raise TaskError(
                f"build_model of task '{self.name}' must return an nn.Module. "
                f"Got {type(model).__name__} instead."
            )
        check_model_runs(model, self.example_input, context=f"task '{self.name}'")
        if not prunable_layers(model):
            kinds = ", ".join(f"nn.{t.__name__}" for t in PRUNABLE_TYPES)
            raise TaskError(
                f"The model of task '{self.name}' ({type(model).__name__}) has no prunable layer "
                f"({kinds}): autoprune prunes the weights of those layers and has nothing to prune here."
            )
        return model

    def check_data(self, model: nn.Module) -> None:
        """Raise TaskError if the splits cannot train and evaluate ``model`` (see tasks._checks)."""
        check_task_data(self, model)


class DeclaredBuilder:
    """A model builder whose models carry declared attention and feed-forward layouts.

    It answers to the wrapped builder's module and name, so a policy file names
    that builder; a builder that declares the layouts itself needs no wrapper.
    """

    def __init__(self, build_model: Callable[[], nn.Module], attention, feed_forward) -> None:
        from autoprune.prune.units import AttentionLayout, FeedForwardLayout

        self.build, self.attention, self.feed_forward = (
            build_model,
            tuple(attention),
            tuple(feed_forward),
        )
        for name, kind, values in (
            ("attention", AttentionLayout, self.attention),
            ("feed_forward", FeedForwardLayout, self.feed_forward),
        ):
            wrong = [v for v in values if not isinstance(v, kind)]
            if wrong:
                raise TaskError(
                    f"The '{name}' field must be a list of {kind.__name__}. "
                    f"Got {shorten(wrong[0])} instead."
                )
        self.__module__ = getattr(build_model, "__module__", None)
        self.__qualname__ = getattr(build_model, "__qualname__", type(build_model).__qualname__)

    def __call__(self) -> nn.Module:
        from autoprune.prune.units import declare_layouts

        model = self.build()
        if isinstance(model, nn.Module):
            declare_layouts(model, self.attention, self.feed_forward)
        return model
