"""Shared fixtures: an isolated cache, no progress bars, a trained digits model."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("AUTOPRUNE_NO_PROGRESS", "1")


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """Every test session trains into its own cache, never the user's."""
    path = tmp_path_factory.mktemp("autoprune-cache")
    previous = os.environ.get("AUTOPRUNE_CACHE_DIR")
    os.environ["AUTOPRUNE_CACHE_DIR"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("AUTOPRUNE_CACHE_DIR", None)
    else:
        os.environ["AUTOPRUNE_CACHE_DIR"] = previous


@pytest.fixture(autouse=True)
def _fixed_threads():
    """Keep torch on the two cores this suite is sized for, and restore it."""
    previous = torch.get_num_threads()
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def digits_task():
    from autoprune.tasks import get_task

    return get_task("digits-mlp")


@pytest.fixture(scope="session")
def digits_dense(digits_task):
    from autoprune.training import dense_model

    return dense_model(digits_task, seed=0, progress=False)


class TinyResNet(torch.nn.Module):
    """A small conv net for 8x8 digits with BatchNorm, a residual addition and a flatten."""

    def __init__(self) -> None:
        super().__init__()
        from torch import nn

        self.conv1 = nn.Conv2d(1, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.conv3 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.fc1 = nn.Linear(16 * 4 * 4, 32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        x = x.view(-1, 1, 8, 8)
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(x + self.bn2(self.conv2(x)))
        x = torch.relu(self.conv3(x))
        return self.fc2(torch.relu(self.fc1(torch.flatten(x, 1))))


def _digits_images_task(name: str, build_model, *, epochs: int):
    """Digits as 1x8x8 images (1,200 train, 300 validation, the rest test) with ``build_model``."""
    import autoprune
    from autoprune.tasks.digits import load_digits_tensors

    x, y = load_digits_tensors()
    x = x.view(-1, 1, 8, 8)
    return autoprune.Task(
        name=name,
        build_model=build_model,
        train_data=(x[:1200], y[:1200]),
        val_data=(x[1200:1500], y[1200:1500]),
        test_data=(x[1500:], y[1500:]),
        example_input=torch.zeros(1, 1, 8, 8),
        epochs=epochs,
        lr=3e-3,
    )


@pytest.fixture(scope="session")
def conv_task():
    """Digits as 1x8x8 images with TinyResNet: convolutions, BatchNorm and a residual, in seconds."""
    return _digits_images_task("digits-conv", TinyResNet, epochs=8)


@pytest.fixture(scope="session")
def conv_dense(conv_task):
    from autoprune.training import dense_model

    return dense_model(conv_task, seed=0, progress=False)


@pytest.fixture(scope="session")
def deep_task():
    """Digits as 1x8x8 images with a residual net of six blocks (depth pruning), in seconds."""
    from models import deep_resnet

    return _digits_images_task("digits-deep", deep_resnet, epochs=6)
