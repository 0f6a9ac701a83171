"""Recovery: one mechanism, seeded, sparse models stay sparse, distillation pulls towards the dense model."""

from __future__ import annotations

import copy

import pytest
import torch

from autoprune.errors import ParameterError
from autoprune.tasks import get_task
from autoprune.training import RecoverySettings, evaluate, recover, train_model
from autoprune.training._recovery import distillation_term, lr_factor


@pytest.fixture(scope="module")
def digits():
    task = get_task("digits-mlp")
    torch.manual_seed(0)
    dense = task.new_model()
    train_model(dense, task, progress=False)
    return task, dense.eval()


def _pruned(dense):
    model = copy.deepcopy(dense)
    with torch.no_grad():
        model.fc1.weight[:, ::2] = 0.0
        model.fc2.weight.mul_(0.2)  # a damaged layer, so recovery has work to do
    return model


def test_recovery_is_seeded_and_keeps_pruned_weights_at_zero(digits):
    task, dense = digits
    settings = RecoverySettings(steps=12, lr=1e-3, seed=3)
    a, b = _pruned(dense), _pruned(dense)
    log = recover(a, dense, task, settings)
    recover(b, dense, task, settings)
    assert log.steps == 12 and log.final_lr < 1e-3 * 0.05  # cosine to (almost) zero
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert float(a.fc1.weight[:, ::2].abs().sum()) == 0.0
    assert float(a.fc1.weight[:, 1::2].abs().sum()) > 0.0
    c = _pruned(dense)
    recover(c, dense, task, RecoverySettings(steps=12, lr=1e-3, seed=4))
    assert not torch.equal(a.fc2.weight, c.fc2.weight)  # another seed, another data order


def test_pure_distillation_moves_the_pruned_model_towards_the_dense_outputs(digits):
    task, dense = digits
    inputs = torch.stack([task.val_data[i][0] for i in range(200)])

    def gap(model):
        with torch.no_grad():
            return float(distillation_term(model(inputs), dense(inputs), "kl", 2.0))

    model = _pruned(dense)
    before = gap(model)
    recover(model, dense, task, RecoverySettings(epochs=4.0, lr=5e-3, distill_weight=1.0))
    assert gap(model) < 0.5 * before
    assert evaluate(model, task.val_data, task).metric > 0.8


def test_learning_rate_rules_and_warmup():
    assert [lr_factor("constant", s, 4) for s in range(4)] == [1.0] * 4
    assert [lr_factor("linear", s, 4) for s in range(4)] == [1.0, 0.75, 0.5, 0.25]
    assert lr_factor("cosine", 0, 10) == 1.0 and lr_factor("cosine", 5, 10) == pytest.approx(0.5)
    assert [lr_factor("cosine", s, 6, warmup_steps=2) for s in range(2)] == [0.5, 1.0]


def test_distillation_terms_are_zero_at_the_teacher_and_positive_elsewhere():
    teacher = torch.tensor([[3.0, 0.0, -1.0], [0.5, 0.2, 0.1]])
    student = torch.tensor([[0.0, 3.0, -1.0], [0.1, 0.2, 0.5]])
    for kind in ("kl", "cosine", "mse"):
        assert float(distillation_term(teacher, teacher, kind, 2.0)) == pytest.approx(0.0, abs=1e-6)
        assert float(distillation_term(student, teacher, kind, 2.0)) > 0.01


def test_settings_are_validated_and_distillation_needs_the_dense_model(digits):
    task, dense = digits
    with pytest.raises(ParameterError, match="The 'lr_rule' parameter must be one of"):
        RecoverySettings(lr_rule="step")
    with pytest.raises(ParameterError, match="The 'distill_weight' parameter must be"):
        RecoverySettings(distill_weight=1.5)
    with pytest.raises(ParameterError, match="The 'dense' parameter must be the dense model"):
        recover(_pruned(dense), None, task, RecoverySettings(steps=1, distill_weight=0.5))
    assert RecoverySettings(epochs=2.0, max_steps=5).total_steps(17) == 5
    assert RecoverySettings(epochs=0.5).to_dict()["epochs"] == 0.5
