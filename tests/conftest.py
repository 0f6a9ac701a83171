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
    from autoprune.checkpoints import dense_model

    return dense_model(digits_task, seed=0, progress=False)
