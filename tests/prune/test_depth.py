"""Depth pruning: whole residual blocks removed, recorded in the policy, rebuilt on load."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from autoprune.apply import apply_policy, load_pruned, save_pruned
from autoprune.budgets import measure_costs
from autoprune.errors import PolicyError, PruningError
from autoprune.policy import Policy
from autoprune.prune.depth import (
    SkippedBlock,
    block_scores,
    prune_blocks,
    removable_blocks,
    removed_blocks,
)
from autoprune.tasks.models import DigitsMLP, FashionResNet


def _resnet(seed: int = 0) -> FashionResNet:
    torch.manual_seed(seed)
    return FashionResNet(blocks=2).eval()


def _input(n: int = 2) -> torch.Tensor:
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(1))


def test_the_removable_blocks_are_the_blocks_with_an_identity_shortcut():
    model = _resnet()
    blocks = removable_blocks(model, _input())
    # layers.0 keeps 32 channels at stride 1, so its shortcut is an identity too;
    # layers.2 and layers.4 downsample through a projection.
    assert blocks == ("layers.0", "layers.1", "layers.3", "layers.5")
    assert len(model.layers[2].shortcut) == 2 and len(model.layers[4].shortcut) == 2
    assert all(len(model.layers[i].shortcut) == 0 for i in (0, 1, 3, 5))


def test_a_model_without_residual_blocks_has_none_to_remove():
    assert removable_blocks(DigitsMLP(), torch.zeros(2, 64)) == ()
    plain = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4), nn.Linear(4, 2))
    assert removable_blocks(plain, torch.zeros(2, 4)) == ()  # same shape but not residual


def test_the_pruned_model_runs_with_fewer_parameters_and_macs():
    model, x = _resnet(), _input()
    result = prune_blocks(model, ["layers.1", "layers.5"], example_input=x)
    assert result.removed == ("layers.1", "layers.5")
    assert isinstance(result.model.layers[1], SkippedBlock)
    assert not isinstance(model.layers[1], SkippedBlock)  # the model itself is not changed
    assert result.model(x).shape == (2, 10)
    before, after = measure_costs(model, x[:1]), measure_costs(result.model, x[:1])
    assert after.params < before.params and after.macs < before.macs
    removed = sum(p.numel() for i in (1, 5) for p in model.layers[i].parameters())
    assert before.params - after.params == removed


def test_save_and_load_pruned_rebuild_the_shallower_model(tmp_path):
    model, x = _resnet(), _input()
    result = prune_blocks(model, ["layers.3"], example_input=x)
    out = save_pruned(result.model, tmp_path / "out", result.document())
    assert removed_blocks(out) == {"removed": ["layers.3"], "tuple_outputs": []}
    again = load_pruned(out, build_model=lambda: FashionResNet(blocks=2))
    assert isinstance(again.layers[3], SkippedBlock)
    with torch.no_grad():
        assert torch.allclose(again(x), result.model(x), atol=1e-6)


def test_channels_pruned_after_the_blocks_replay_on_the_shallower_model(tmp_path):
    model, x = _resnet(), _input()
    result = prune_blocks(model, ["layers.1"], example_input=x)
    policy = Policy.uniform(["layers.2.conv1"], 0.5, granularity="structured")
    pruned = apply_policy(result.model, policy, example_input=x[:1])
    assert pruned.model.layers[2].conv1.out_channels == 32
    out = save_pruned(
        pruned.model, tmp_path / "out", result.document(policy), history=pruned.history
    )
    again = load_pruned(out, build_model=lambda: FashionResNet(blocks=2))
    assert isinstance(again.layers[1], SkippedBlock) and again.layers[2].conv1.out_channels == 32
    with torch.no_grad():
        assert torch.allclose(again(x), pruned.model(x), atol=1e-6)


def test_apply_policy_removes_the_blocks_a_policy_records():
    model, x = _resnet(), _input()
    result = prune_blocks(model, ["layers.0", "layers.5"], example_input=x)
    applied = apply_policy(model, result.document(), example_input=x[:1])
    assert isinstance(applied.model.layers[0], SkippedBlock)
    assert isinstance(applied.model.layers[5], SkippedBlock)
    with torch.no_grad():
        assert torch.allclose(applied.model(x), result.model(x), atol=1e-6)


def test_block_scores_find_a_block_that_leaves_its_input_unchanged():
    model, x = _resnet(), _input(4)
    with torch.no_grad():  # layers.1's residual branch is zero: its output is its (ReLU'd) input
        model.layers[1].bn2.weight.zero_()
        model.layers[1].bn2.bias.zero_()
    blocks = removable_blocks(model, x)
    data = [(x, torch.tensor([0, 1, 2, 3]))] * 3
    scores = block_scores(model, blocks, data, nn.functional.cross_entropy, batches=2)
    assert list(scores) == list(blocks)
    assert scores["layers.1"].cosine == pytest.approx(0.0, abs=1e-6)
    assert scores["layers.1"].loss == pytest.approx(0.0, abs=1e-6)
    assert all(scores[name].cosine > 1e-4 for name in blocks if name != "layers.1")
    assert not model.training  # the model's mode is restored


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("layers.2", "differs from its input shape"),
        ("nope", "no such block"),
        ("stem.1", "neither a residual block"),
    ],
)
def test_a_block_that_cannot_be_removed_is_refused_by_name(name, reason):
    with pytest.raises(PruningError, match=reason) as info:
        prune_blocks(_resnet(), ["layers.1", name], example_input=_input())
    message = str(info.value)
    assert f"'{name}'" in message and "Expected one of the removable blocks (layers.0" in message
    assert "\n" not in message


def test_a_model_without_blocks_refuses_any():
    with pytest.raises(PruningError, match=r"'fc2' cannot be removed.*\(none\)"):
        prune_blocks(DigitsMLP(), ["fc2"], example_input=torch.zeros(2, 64))


def test_a_damaged_depth_record_is_a_policy_error(tmp_path):
    x = _input()
    document = prune_blocks(_resnet(), ["layers.1"], example_input=x).document()
    document.results["depth"] = {"removed": "layers.1"}
    with pytest.raises(PolicyError, match="results.depth"):
        removed_blocks(document)


def test_transformer_layers_are_removable():
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=3,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
    )
    torch.manual_seed(0)
    model = transformers.BertModel(config).eval()
    ids = torch.randint(0, 50, (2, 8))
    assert removable_blocks(model, ids) == tuple(f"encoder.layer.{i}" for i in range(3))
    result = prune_blocks(model, ["encoder.layer.1"], example_input=ids)
    assert result.model(ids).last_hidden_state.shape == (2, 8, 16)
    assert sum(p.numel() for p in result.model.parameters()) < sum(
        p.numel() for p in model.parameters()
    )
