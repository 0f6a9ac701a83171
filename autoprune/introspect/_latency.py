"""CPU latency, measured properly: warm-up, repeats, median and spread.

The batch is the task's example input repeated ``batch_size`` times; the
thread count is set for the measurement and restored afterwards. Both are
part of the result, because a latency without them means little.

Example:
    >>> import torch
    >>> stats = measure_latency(torch.nn.Linear(8, 8), torch.zeros(1, 8), batch_size=4, repeats=5, warmup=1)
    >>> stats.batch_size, stats.threads, stats.median_ms > 0
    (4, 1, True)
"""

from __future__ import annotations

import contextlib
import statistics
import time
from dataclasses import asdict, dataclass

import torch
from torch import nn

from autoprune._device import model_device, synchronize
from autoprune._validation import Interval, validate_params

DEFAULT_BATCH_SIZE = 64
DEFAULT_THREADS = 1


@dataclass(frozen=True)
class LatencyStats:
    """Latency of one forward pass of a batch, in milliseconds."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    iqr_ms: float
    mean_ms: float
    batch_size: int
    threads: int
    repeats: int

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return (
            f"{self.median_ms:.3f} ms median (p10 {self.p10_ms:.3f}, p90 {self.p90_ms:.3f}; "
            f"batch {self.batch_size}, {self.threads} thread{'s' if self.threads != 1 else ''}, "
            f"{self.repeats} repeats)"
        )


@contextlib.contextmanager
def torch_threads(threads: int):
    """Run the block with ``threads`` intra-op threads, then restore the previous count."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _quantile(sorted_values: list[float], q: float) -> float:
    position = q * (len(sorted_values) - 1)
    low = int(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


@validate_params(
    {
        "batch_size": Interval(int, 1, None),
        "threads": Interval(int, 1, None),
        "repeats": Interval(int, 1, None),
        "warmup": Interval(int, 0, None),
    }
)
@torch.inference_mode()
def measure_latency(
    model: nn.Module,
    example_input: torch.Tensor,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    threads: int = DEFAULT_THREADS,
    warmup: int = 10,
    repeats: int = 50,
) -> LatencyStats:
    """Median and spread of the forward time of ``model`` on a batch of ``batch_size``."""
    device = model_device(model)
    batch = example_input[:1].expand(batch_size, *example_input.shape[1:]).contiguous().to(device)
    was_training = model.training
    model.eval()
    times = []
    try:
        with torch_threads(threads):
            for _ in range(warmup):
                model(batch)
            synchronize(device)
            for _ in range(repeats):
                start = time.perf_counter()
                model(batch)
                synchronize(device)
                times.append((time.perf_counter() - start) * 1000.0)
    finally:
        model.train(was_training)
    times.sort()
    p25, p75 = _quantile(times, 0.25), _quantile(times, 0.75)
    return LatencyStats(
        median_ms=statistics.median(times),
        p10_ms=_quantile(times, 0.10),
        p90_ms=_quantile(times, 0.90),
        iqr_ms=p75 - p25,
        mean_ms=statistics.fmean(times),
        batch_size=batch_size,
        threads=threads,
        repeats=repeats,
    )


def side_by_side_latency(
    models: dict[str, nn.Module],
    example_input: torch.Tensor,
    *,
    rounds: int = 5,
    batch_size: int = 64,
    threads: int = 1,
    repeats: int = 30,
) -> dict[str, dict]:
    """Median latency of each model over ``rounds`` interleaved measurements, and its spread.

    Interleaving (A, B, A, B, ...) exposes every model to the same machine noise,
    so ratios between them are meaningful on a shared machine.
    """
    medians: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            stats = measure_latency(
                model,
                example_input,
                batch_size=batch_size,
                threads=threads,
                repeats=repeats,
                warmup=3,
            )
            medians[name].append(stats.median_ms)
    return {
        name: {
            "median_ms": statistics.median(values),
            "min_ms": min(values),
            "max_ms": max(values),
            "rounds": rounds,
            "batch_size": batch_size,
            "threads": threads,
        }
        for name, values in medians.items()
    }
