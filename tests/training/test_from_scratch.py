"""Train-time pruning: a fresh model trained from scratch while the policy's schedule prunes it."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from autoprune.errors import ParameterError, PolicyError
from autoprune.policy import FinetuneRecipe, Policy, ScheduleSpec
from autoprune.policy_file import PolicyDocument, fingerprint
from autoprune.prune import Pruner
from autoprune.tasks.models import DigitsMLP, FashionCNN
from autoprune.training import train_with_policy

STEPS_PER_EPOCH = 17  # digits-mlp: 1,077 training items in batches of 64


def _zeros(layer: torch.nn.Module) -> float:
    return float((layer.weight == 0).float().mean())


def test_the_result_meets_the_policys_amounts(digits_task):
    policy = Policy.uniform(["fc1", "fc2"], 0.6, finetune=FinetuneRecipe(epochs=7, lr=0.5))
    outcome = train_with_policy(digits_task, policy, epochs=0.5)
    assert outcome.finetune_steps == math.ceil(0.5 * STEPS_PER_EPOCH)  # not the recipe's 7 epochs
    assert {r["layer"]: round(r["sparsity"], 2) for r in outcome.layers[:2]} == {
        "fc1": 0.6,
        "fc2": 0.6,
    }
    assert _zeros(outcome.model.fc1) == pytest.approx(0.6, abs=0.01)
    assert _zeros(outcome.model.fc2) == pytest.approx(0.6, abs=0.01)
    assert _zeros(outcome.model.fc3) == 0.0 and not outcome.model.training


def test_epochs_and_lr_default_to_the_tasks_training(digits_task, monkeypatch):
    import autoprune.training._prune_finetune as engine

    seen = []
    original = engine.train_model
    monkeypatch.setattr(
        engine, "train_model", lambda *a, **k: seen.append(k["settings"].lr) or original(*a, **k)
    )
    task = replace(digits_task, epochs=1, lr=2e-3)
    outcome = train_with_policy(task, Policy.uniform(["fc1"], 0.5))
    assert outcome.finetune_steps == STEPS_PER_EPOCH and seen == [2e-3]


def test_a_gradual_schedule_moves_the_masks_during_training_and_ends_at_the_final_amounts(
    digits_task, monkeypatch
):
    amounts = []
    original = Pruner.step

    def step(self, *args, **kwargs):
        original(self, *args, **kwargs)
        amounts.append(_zeros(self.model.fc1))

    monkeypatch.setattr(Pruner, "step", step)
    schedule = ScheduleSpec("gradual", every=2, end=0.75)
    policy = Policy.uniform(["fc1", "fc2"], 0.8, schedule=schedule)
    outcome = train_with_policy(digits_task, policy, epochs=1)
    # 17 steps: the masks move at steps 2, 4, ..., 12 (three quarters of the run), then stay
    assert len(amounts) == 6 and amounts == sorted(amounts)
    assert 0.0 < amounts[0] < 0.5 and amounts[-1] == pytest.approx(0.8, abs=0.01)
    assert outcome.finetune_steps == STEPS_PER_EPOCH
    assert _zeros(outcome.model.fc1) == pytest.approx(0.8, abs=0.01)
    assert _zeros(outcome.model.fc2) == pytest.approx(0.8, abs=0.01)


def test_the_same_seed_gives_the_same_weights_and_leaves_the_callers_generator(digits_task):
    policy = Policy.uniform(["fc1", "fc2"], 0.5, schedule=ScheduleSpec("iterative", rounds=2))
    caller = torch.get_rng_state()
    first = train_with_policy(digits_task, policy, epochs=0.5, seed=3).model.state_dict()
    again = train_with_policy(digits_task, policy, epochs=0.5, seed=3).model.state_dict()
    other = train_with_policy(digits_task, policy, epochs=0.5, seed=4).model.state_dict()
    assert torch.equal(torch.get_rng_state(), caller)
    assert first.keys() == again.keys()
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not torch.equal(first["fc1.weight"], other["fc1.weight"])  # the seed is the init's


def test_a_structured_policy_trains_a_physically_smaller_model(digits_task):
    policy = Policy.uniform(["fc1", "fc2"], 0.5, granularity="structured")
    outcome = train_with_policy(digits_task, policy, epochs=0.5)
    model = outcome.model
    assert (model.fc1.out_features, model.fc2.in_features, model.fc2.out_features) == (64, 64, 32)
    assert [entry.unit for entry in outcome.history] == ["fc1", "fc2"]
    dense = sum(p.numel() for p in DigitsMLP().parameters())
    assert sum(p.numel() for p in model.parameters()) < dense / 2
    assert model(torch.zeros(2, 64)).shape == (2, 10)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"epochs": 0}, "The 'epochs' parameter must be in (0, 1000]. Got 0 instead."),
        ({"epochs": -1.5}, "The 'epochs' parameter must be in (0, 1000]. Got -1.5 instead."),
        ({"epochs": float("nan")}, "The 'epochs' parameter must be a finite number. Got nan"),
        ({"epochs": "3"}, "The 'epochs' parameter must be a number. Got '3' instead."),
        ({"lr": 1.5}, "The 'lr' parameter must be in (0, 1). Got 1.5 instead."),
        ({"seed": 0.5}, "The 'seed' parameter must be an integer in [-2**63, 2**64). Got 0.5"),
    ],
)
def test_bad_settings_give_the_one_line_error(digits_task, settings, message):
    with pytest.raises(ParameterError) as info:
        train_with_policy(digits_task, Policy.uniform(["fc1"], 0.5), **settings)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_a_task_whose_own_epochs_are_out_of_range_is_named(digits_task):
    with pytest.raises(ParameterError, match=r"'epochs' parameter must be in \(0, 1000\]"):
        train_with_policy(replace(digits_task, epochs=0), Policy.uniform(["fc1"], 0.5))


def test_a_policy_for_another_model_is_refused_before_training(digits_task):
    document = PolicyDocument(Policy.uniform(["conv1"], 0.5), fingerprint=fingerprint(FashionCNN()))
    with pytest.raises(PolicyError, match="conv1"):
        train_with_policy(digits_task, document, epochs=0.5)
