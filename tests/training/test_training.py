from __future__ import annotations

import pickle

import pytest
import torch

from autoprune._weights import load_weights, save_weights
from autoprune.errors import AutopruneError, TaskError, TrainingDiverged
from autoprune.training import TrainingSettings, dense_model, evaluate, train_model


def test_digits_dense_model_is_accurate(digits_dense):
    assert digits_dense.info["test_metric"] > 0.93
    assert digits_dense.info["val_metric"] > 0.93


def test_training_is_deterministic(digits_task):
    models = []
    for _ in range(2):
        torch.manual_seed(0)
        model = digits_task.new_model()
        train_model(model, digits_task, settings=TrainingSettings(epochs=2, seed=3), progress=False)
        models.append(model)
    for a, b in zip(models[0].state_dict().values(), models[1].state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_dense_cache_hits_and_is_keyed_by_training_settings(digits_task, digits_dense, tmp_path):
    again = dense_model(digits_task, seed=0, progress=False)
    assert again.info["cached"] is True
    for a, b in zip(
        again.model.state_dict().values(), digits_dense.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)
    other_seed = dense_model(digits_task, seed=1, cache=tmp_path, progress=False)
    assert other_seed.info["cached"] is False and other_seed.info["key"] != digits_dense.info["key"]


def test_dense_cache_key_covers_loss_metric_and_split(digits_task):
    import dataclasses

    from torch import nn

    from autoprune.training._dense import _cache_key

    model = digits_task.new_model()
    base = _cache_key(digits_task, model, 0)
    variants = [
        dataclasses.replace(digits_task, loss=nn.CrossEntropyLoss(label_smoothing=0.1)),
        dataclasses.replace(digits_task, metric=lambda out, y: 0.0),
        dataclasses.replace(digits_task, split_seed=1),
        dataclasses.replace(digits_task, name="digits-other"),
    ]
    keys = {_cache_key(task, model, 0) for task in variants}
    assert base not in keys and len(keys) == len(variants)
    assert _cache_key(dataclasses.replace(digits_task), model, 0) == base


def test_task_checkpoint_is_loaded_not_trained(digits_task, digits_dense, tmp_path):
    import dataclasses

    path = tmp_path / "dense.safetensors"
    save_weights(path, digits_dense.model.state_dict())
    task = dataclasses.replace(digits_task, checkpoint=path)
    loaded = dense_model(task, progress=False)
    assert loaded.info["checkpoint"] == str(path)
    assert loaded.info["test_metric"] == pytest.approx(digits_dense.info["test_metric"])


def test_checkpoint_that_does_not_fit_is_refused(digits_task, tmp_path):
    import dataclasses

    path = tmp_path / "wrong.safetensors"
    save_weights(path, {"fc1.weight": torch.zeros(3, 3)})
    with pytest.raises(TaskError, match="does not fit the model of task 'digits-mlp'"):
        dense_model(dataclasses.replace(digits_task, checkpoint=path), progress=False)


def test_nan_loss_is_reported(digits_task):
    model = digits_task.new_model()
    with torch.no_grad():
        model.fc3.weight.fill_(float("nan"))
    with pytest.raises(TrainingDiverged, match="loss became nan"):
        train_model(model, digits_task, settings=TrainingSettings(epochs=1), progress=False)


def test_evaluate_subset_and_loss(digits_task, digits_dense):
    full = evaluate(digits_dense.model, digits_task.val_data, digits_task)
    part = evaluate(digits_dense.model, digits_task.val_data, digits_task, max_items=100)
    assert full.n == 360 and part.n == 100 and full.loss > 0


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_pickled_objects_are_never_loaded_as_weights(tmp_path):
    path = tmp_path / "weights.pt"
    with open(path, "wb") as f:
        pickle.dump({"w": _Evil()}, f)
    with pytest.raises(AutopruneError, match="weights only"):
        load_weights(path)


def test_truncated_safetensors_is_a_clear_error(tmp_path):
    path = tmp_path / "w.safetensors"
    save_weights(path, {"w": torch.ones(100)})
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(AutopruneError, match="not a readable safetensors file"):
        load_weights(path)
