"""scikit-learn's breast cancer data (569 real cases, 30 features) with a small MLP.

The task carries the 30 feature names, so pruning the model's input features
(:func:`autoprune.prune.inputs.prune_inputs`) reports the kept ones by name. Inputs are
standardised with the training split's mean and standard deviation.

Example:
    >>> task = breast_cancer_mlp_task()
    >>> len(task.train_data), len(task.val_data), len(task.test_data)
    (341, 114, 114)
    >>> len(task.feature_names), task.feature_names[0]
    (30, 'mean radius')
"""

from __future__ import annotations

import torch
from torch import nn

from autoprune.tasks._task import Task

N_FEATURES = 30
N_HOLDOUT = 114  # cases in each of the validation and test splits


class TabularMLP(nn.Module):
    """An MLP for tabular inputs: ``in_features`` -> 64 -> 32 -> ``num_classes``."""

    def __init__(
        self,
        in_features: int = N_FEATURES,
        hidden: tuple[int, ...] = (64, 32),
        num_classes: int = 2,
    ) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden[0])
        self.fc2 = nn.Linear(hidden[0], hidden[1])
        self.fc3 = nn.Linear(hidden[1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.fc1(x))
        x = torch.relu(self.fc2(x))
        return self.fc3(x)


def load_breast_cancer_tensors() -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    """The raw features (569, 30) as float32, the int64 labels and the feature names."""
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer()
    x = torch.tensor(bunch.data, dtype=torch.float32)
    names = tuple(str(name) for name in bunch.feature_names)
    return x, torch.tensor(bunch.target, dtype=torch.long), names


def breast_cancer_splits(*, split_seed: int = 0) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Seeded train / val / test splits (341 / 114 / 114), standardised by the training split."""
    x, y, _ = load_breast_cancer_tensors()
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(split_seed))
    parts = {
        "test": order[:N_HOLDOUT],
        "val": order[N_HOLDOUT : 2 * N_HOLDOUT],
        "train": order[2 * N_HOLDOUT :],
    }
    parts = {name: index.sort().values for name, index in parts.items()}
    mean = x[parts["train"]].mean(0)
    std = x[parts["train"]].std(0).clamp_min(1e-8)
    return {name: ((x[index] - mean) / std, y[index]) for name, index in parts.items()}


def breast_cancer_mlp_task(*, split_seed: int = 0) -> Task:
    """Breast cancer with :class:`TabularMLP` (30 -> 64 -> 32 -> 2), its feature names attached."""
    splits = breast_cancer_splits(split_seed=split_seed)
    _, _, names = load_breast_cancer_tensors()
    return Task(
        name="breast-cancer-mlp",
        build_model=TabularMLP,
        train_data=splits["train"],
        val_data=splits["val"],
        test_data=splits["test"],
        metric="accuracy",
        example_input=torch.zeros(1, N_FEATURES),
        epochs=40,
        lr=3e-3,
        batch_size=32,
        split_seed=split_seed,
        feature_names=names,
        description="scikit-learn breast cancer (30 named features) with a small MLP",
    )
