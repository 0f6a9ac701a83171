"""The breast-cancer-mlp task: real tabular data, standardised splits, named features."""

from __future__ import annotations

import pytest
import torch

import autoprune
from autoprune.errors import TaskError
from autoprune.tasks import available_tasks, get_task


def test_breast_cancer_task_has_fixed_standardised_splits_and_feature_names():
    assert "breast-cancer-mlp" in available_tasks()
    task = get_task("breast-cancer-mlp")
    x, y = task.train_data.tensors
    assert (len(task.train_data), len(task.val_data), len(task.test_data)) == (341, 114, 114)
    assert torch.allclose(x.mean(0), torch.zeros(30), atol=1e-5)
    assert torch.allclose(x.std(0), torch.ones(30), atol=1e-5)
    assert set(y.tolist()) == {0, 1}
    assert len(task.feature_names) == 30 and task.feature_names[-1] == "worst fractal dimension"
    again = get_task("breast-cancer-mlp")
    assert torch.equal(again.test_data.tensors[0], task.test_data.tensors[0])
    assert task.new_model()(task.example_input).shape == (1, 2)


def test_feature_names_must_fit_the_input_columns():
    data = (torch.zeros(4, 3), torch.zeros(4, dtype=torch.long))
    common = {
        "name": "t",
        "build_model": lambda: torch.nn.Linear(3, 2),
        "train_data": data,
        "val_data": data,
        "test_data": data,
    }
    assert autoprune.Task(**common, feature_names=["a", "b", "c"]).feature_names == ("a", "b", "c")
    assert autoprune.Task(**common).feature_names == ()
    with pytest.raises(TaskError, match=r"'feature_names' field must be 3 names.*Got \['a'\]"):
        autoprune.Task(**common, feature_names=["a"])
    with pytest.raises(TaskError, match="'feature_names' field must be a list of strings"):
        autoprune.Task(**common, feature_names="abc")
