"""Train-time pruning: the regularised schedule's proximal shrink and its place in a fine-tuning run."""

from __future__ import annotations

import pytest
import torch

from autoprune.errors import PolicyError
from autoprune.policy import FinetuneRecipe, Policy, ScheduleSpec
from autoprune.prune import Calibration, GroupShrink, Pruner
from autoprune.tasks import get_task
from autoprune.tasks.models import FashionResNet
from autoprune.training import prune_and_finetune


def _pruner(model, policy):
    return Pruner(model, policy, calibration=Calibration(torch.zeros(1, 1, 28, 28)))


def test_group_shrink_moves_whole_units_with_their_batchnorm_towards_zero():
    torch.manual_seed(0)
    model = FashionResNet(widths=(8, 16, 16))
    policy = Policy.uniform(["stem.0", "layers.1.conv1"], 0.5, granularity="structured")
    pruner = _pruner(model, policy)
    shrink = GroupShrink.of(pruner, strength=0.5, steps=10)
    group = pruner.units.group_of("layers.1.conv1")
    before = shrink._norms(group).clone()
    bn = model.layers[1].bn1.weight.detach().clone()
    for step in range(10):
        shrink(model, step + 1)
    after = shrink._norms(group)
    # each unit loses the same norm (half the mean), so the smallest go to zero first
    assert torch.allclose(after, (before - 0.5 * before.mean()).clamp_min(0), atol=1e-5)
    assert bool(
        (model.layers[1].bn1.weight.abs() < bn.abs()).all()
    )  # BN scales shrink with their unit
    assert set(shrink.groups) == {pruner.units.group_of(n) for n in policy.layers}


def test_unstructured_layers_are_soft_thresholded_weight_by_weight():
    task = get_task("digits-mlp")
    model = task.new_model()
    pruner = Pruner(model, Policy.uniform(["fc2"], 0.5), calibration=Calibration.from_task(task))
    before = model.fc2.weight.detach().clone()
    fc1 = model.fc1.weight.detach().clone()
    shrink = GroupShrink.of(pruner, strength=2.0, steps=1)
    shrink(model)
    eta = 2.0 * before.abs().mean()
    expected = before.sign() * (before.abs() - eta).clamp_min(0)
    assert torch.allclose(model.fc2.weight, expected)
    assert torch.equal(model.fc1.weight, fc1)  # a layer the policy leaves alone is not shrunk
    assert float((model.fc2.weight == 0).float().mean()) > 0.5


def _run(schedule: ScheduleSpec):
    task = get_task("digits-mlp")
    torch.manual_seed(0)
    model = task.new_model()
    policy = Policy.uniform(
        ["fc1"],
        0.5,
        granularity="structured",
        schedule=schedule,
        finetune=FinetuneRecipe(epochs=2, lr=1e-3, recalibrate_bn=False),
    )
    return prune_and_finetune(model, policy, task)


def test_a_regularised_schedule_shrinks_then_prunes_to_the_policys_amount():
    regularised = _run(ScheduleSpec("regularised", end=0.5, strength=2.0))
    one_shot = _run(ScheduleSpec("one-shot"))
    off = _run(ScheduleSpec("regularised", end=0.5, strength=0.0))
    row = {r["layer"]: r for r in regularised.layers}["fc1"]
    assert row["channel_ratio"] == pytest.approx(0.5)
    assert regularised.model.fc1.out_features == one_shot.model.fc1.out_features == 64
    # the shrink changes which units survive and how the model ends up
    assert not torch.equal(regularised.model.fc1.weight, off.model.fc1.weight)
    assert regularised.finetune_steps == one_shot.finetune_steps == off.finetune_steps


def test_the_schedule_strength_is_validated_and_round_trips():
    spec = ScheduleSpec("regularised", end=0.6, strength=0.25)
    policy = Policy.uniform(["fc1"], 0.5, schedule=spec)
    assert Policy.from_dict(policy.to_dict()).schedule == spec
    with pytest.raises(PolicyError, match="'strength'.*Got -1"):
        ScheduleSpec("regularised", strength=-1.0)
