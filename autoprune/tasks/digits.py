"""scikit-learn's digits (1,797 real 8x8 images) with a small MLP: the fast task for tests.

Example:
    >>> task = digits_mlp_task()
    >>> len(task.train_data) + len(task.val_data) + len(task.test_data)
    1797
"""

from __future__ import annotations

import torch

from autoprune.tasks._data import as_dataset, split_off
from autoprune.tasks._task import Task
from autoprune.tasks.models import DigitsMLP


def load_digits_tensors() -> tuple[torch.Tensor, torch.Tensor]:
    """Digits as float32 inputs scaled to [0, 1] (N, 64) and int64 labels."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.tensor(bunch.data, dtype=torch.float32) / 16.0
    return x, torch.tensor(bunch.target, dtype=torch.long)


def digits_mlp_task(*, split_seed: int = 0) -> Task:
    """Digits with :class:`DigitsMLP`: 1,077 train / 360 validation / 360 test, seeded."""
    full = as_dataset(load_digits_tensors(), "digits")
    rest, test = split_off(full, 360, seed=split_seed)
    train, val = split_off(rest, 360, seed=split_seed + 1)
    return Task(
        name="digits-mlp",
        build_model=DigitsMLP,
        train_data=train,
        val_data=val,
        test_data=test,
        metric="accuracy",
        example_input=torch.zeros(1, 64),
        epochs=30,
        lr=3e-3,
        batch_size=64,
        description="scikit-learn digits with a small MLP",
    )
