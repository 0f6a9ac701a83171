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

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from autoprune._validation import MAX_SEED, Interval, shorten, validate_fields
from autoprune.errors import TaskError
from autoprune.tasks._data import as_dataset, split_off
from autoprune.tasks._metrics import get_metric, metric_name

# A task's name becomes part of file names (the dense cache, the default run directory).
NAME_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,99}")
MAX_EPOCHS = 10_000  # dense training epochs
MAX_BATCH_SIZE = 65_536
# The declared constraints of a task's training settings.
TRAINING_FIELDS = {
    "epochs": Interval(int, 0, MAX_EPOCHS),
    "batch_size": Interval(int, 1, MAX_BATCH_SIZE),
    "lr": Interval(float, 0, 1, closed="right"),
    "weight_decay": Interval(float, 0, None),
    "split_seed": Interval(int, 0, MAX_SEED, closed="left"),
    "val_fraction": Interval(float, 0, 1, closed="left"),
}


def check_task_name(name) -> str:
    """``name`` if it is a safe file-name slug: letters, digits, ``-``, ``_``, ``.``, no ``..``.

    Example:
        >>> check_task_name("digits-mlp")
        'digits-mlp'
        >>> check_task_name("../evil")
        Traceback (most recent call last):
        ...
        autoprune.errors.TaskError: The 'name' field must be 1-100 letters, digits, '-', '_' or '.' (no '..', not starting with '.' or '-'): it names files and directories. Got '../evil' instead.
    """
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name) or ".." in name:
        raise TaskError(
            "The 'name' field must be 1-100 letters, digits, '-', '_' or '.' (no '..', not "
            f"starting with '.' or '-'): it names files and directories. Got {shorten(name)} instead."
        )
    return name


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
        from autoprune.tasks._checks import check_task_data

        check_task_data(self, model)


def check_feature_names(names, example_input: torch.Tensor) -> tuple[str, ...]:
    """``names`` as a tuple if they are strings, one per column of a 2-D ``example_input``.

    Example:
        >>> check_feature_names(["a", "b"], torch.zeros(1, 3))
        Traceback (most recent call last):
        ...
        autoprune.errors.TaskError: The 'feature_names' field must be 3 names, one per input column. Got ['a', 'b'] instead.
    """
    if names is None:
        return ()
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise TaskError(
            "The 'feature_names' field must be a list of strings, one per input column. "
            f"Got {shorten(names)} instead."
        )
    columns = example_input.shape[1] if example_input.dim() == 2 else None
    if names and columns != len(names):
        expected = (
            f"{columns} names" if columns is not None else "empty for inputs that are not 2-D"
        )
        raise TaskError(
            f"The 'feature_names' field must be {expected}, one per input column. "
            f"Got {shorten(list(names))} instead."
        )
    return tuple(names)


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


def callable_identity(fn: object) -> str:
    """A stable description of a loss or metric: its qualified name, settings and code.

    Two functions with the same name but different bodies, or two loss modules
    with different settings (``label_smoothing``...), get different identities.

    Example:
        >>> callable_identity(nn.CrossEntropyLoss()) == callable_identity(nn.CrossEntropyLoss())
        True
        >>> callable_identity(nn.CrossEntropyLoss(label_smoothing=0.1)) == callable_identity(nn.CrossEntropyLoss())
        False
    """
    import functools
    import hashlib

    if isinstance(fn, functools.partial):
        bound = repr((fn.args, sorted(fn.keywords.items())))
        return f"{callable_identity(fn.func)}+{hashlib.sha256(bound.encode()).hexdigest()[:8]}"
    code = getattr(fn, "__code__", None)
    owner = fn if code is not None or isinstance(fn, type) else type(fn)
    name = f"{owner.__module__}.{owner.__qualname__}"
    h = hashlib.sha256(name.encode())
    if code is not None:
        h.update(code.co_code)
        h.update(repr(code.co_consts).encode())
    else:
        plain = (bool, int, float, str, type(None))
        settings = (
            sorted((k, v) for k, v in vars(fn).items() if isinstance(v, plain))
            if hasattr(fn, "__dict__")
            else []
        )
        h.update(repr(settings).encode())
    return f"{name}:{h.hexdigest()[:12]}"


def check_model_runs(
    model: nn.Module, example_input: torch.Tensor, *, context: str
) -> torch.Tensor:
    """Run ``model`` on ``example_input`` in eval mode; raise TaskError if it fails."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return model(example_input)
    except Exception as exc:
        raise TaskError(
            f"The model of {context} does not run on its example_input of shape "
            f"{tuple(example_input.shape)}: {type(exc).__name__}: {shorten(' '.join(str(exc).split()), text=True)}. "
            "Fix example_input (it needs a batch dimension) or the model."
        ) from exc
    finally:
        model.train(was_training)
