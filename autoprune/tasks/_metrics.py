"""Metrics: higher is better, computed over a whole split.

A task names a built-in metric ("accuracy") or passes a callable
``metric(outputs, targets) -> float`` that sees the concatenated outputs and
targets of the split.

Example:
    >>> import torch
    >>> m = get_metric("accuracy")
    >>> m.update(torch.tensor([[0.1, 0.9], [0.8, 0.2]]), torch.tensor([1, 1]))
    >>> m.compute()
    0.5
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from autoprune._validation import shorten
from autoprune.errors import TaskError

BUILTIN_METRICS = ("accuracy",)


class Metric:
    """Accumulates batches and computes one number for the split."""

    name: str = "metric"

    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        raise NotImplementedError

    def compute(self) -> float:
        raise NotImplementedError


class Accuracy(Metric):
    """Top-1 accuracy of class scores against integer labels, in [0, 1]."""

    name = "accuracy"

    def __init__(self) -> None:
        self.correct = 0
        self.total = 0

    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        self.correct += int((outputs.argmax(dim=1) == targets).sum())
        self.total += int(targets.numel())

    def compute(self) -> float:
        return self.correct / max(self.total, 1)


class CallableMetric(Metric):
    """Wraps a user function of (all outputs, all targets)."""

    def __init__(self, fn: Callable[[torch.Tensor, torch.Tensor], float]) -> None:
        self.fn = fn
        self.name = getattr(fn, "__name__", "metric")
        self.outputs: list[torch.Tensor] = []
        self.targets: list[torch.Tensor] = []

    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        self.outputs.append(outputs.detach())
        self.targets.append(targets.detach())

    def compute(self) -> float:
        """The user's metric over the whole split; its failure is a TaskError naming it."""
        try:
            value = self.fn(torch.cat(self.outputs), torch.cat(self.targets))
        except Exception as exc:  # user code: one line with the reason
            text = shorten(" ".join(str(exc).split()), text=True)
            raise TaskError(
                f"The metric '{shorten(self.name, text=True)}' raised {type(exc).__name__}: {text} "
                "(it is called as metric(outputs, targets) on a whole split)."
            ) from exc
        try:
            return float(value)
        except (TypeError, ValueError, OverflowError, RuntimeError) as exc:
            raise TaskError(
                f"The metric '{shorten(self.name, text=True)}' must return a number (higher is "
                f"better). Got {type(value).__name__} {shorten(value)} instead."
            ) from exc


def get_metric(spec: str | Callable) -> Metric:
    """A fresh metric accumulator for a metric name or callable."""
    if callable(spec):
        return CallableMetric(spec)
    if spec == "accuracy":
        return Accuracy()
    raise TaskError(
        f"The 'metric' field must be one of {', '.join(BUILTIN_METRICS)} or a callable "
        f"metric(outputs, targets) -> float. Got {shorten(spec)} instead."
    )


def metric_name(spec: str | Callable) -> str:
    """The display name of a metric spec."""
    return spec if isinstance(spec, str) else getattr(spec, "__name__", "metric")
