"""MACs as dense kernels run them, the sparse count beside them, and FLOPs with attention included."""

from __future__ import annotations

import copy

import torch
from models import TOKENS, tiny_bert

from autoprune.budgets import CostModel, measure_costs, parse_budget
from autoprune.introspect import count_flops, profile_model
from autoprune.policy import FinetuneRecipe, LayerPolicy, Policy
from autoprune.prune import Calibration, Pruner
from autoprune.tasks.models import FashionCNN

EXAMPLE = torch.zeros(1, 1, 28, 28)
NO_FINETUNE = FinetuneRecipe(epochs=0)


def _pruned(policy: Policy) -> torch.nn.Module:
    torch.manual_seed(0)
    model = FashionCNN().eval()
    Pruner(model, policy, calibration=Calibration(EXAMPLE)).step()
    return model


def test_zeroed_weights_save_sparse_macs_only_and_removed_channels_save_both():
    dense = measure_costs(FashionCNN(), EXAMPLE)
    assert dense.macs == dense.sparse_macs == 4_241_152
    zeroed = measure_costs(
        _pruned(Policy.uniform(["conv2", "fc1"], 0.5, finetune=NO_FINETUNE)), EXAMPLE
    )
    assert zeroed.macs == dense.macs  # dense kernels still multiply the zeros
    conv2, fc1 = 14 * 14 * 64 * 32 * 9, 3136 * 128
    assert zeroed.sparse_macs == dense.macs - conv2 // 2 - fc1 // 2
    removed = measure_costs(
        _pruned(Policy.uniform(["conv1"], 0.5, granularity="structured", finetune=NO_FINETUNE)),
        EXAMPLE,
    )
    # half of conv1's 32 channels go: conv1 and conv2 (its input) both halve
    assert removed.macs == dense.macs - (28 * 28 * 32 * 9) // 2 - conv2 // 2
    assert removed.sparse_macs == removed.macs


def test_the_cost_model_estimates_both_counts_exactly():
    model = FashionCNN()
    cm = CostModel(model, EXAMPLE)
    policy = Policy(
        layers={
            "conv1": LayerPolicy(granularity="structured", channel_ratio=0.25),
            "conv2": LayerPolicy(sparsity=0.6),
            "fc1": LayerPolicy(granularity="nm", nm="2:4"),
        },
        finetune=NO_FINETUNE,
    )
    estimate = cm.estimate(policy)
    pruned = copy.deepcopy(model)
    Pruner(pruned, policy, calibration=Calibration(EXAMPLE)).step()
    real = measure_costs(pruned, EXAMPLE)
    assert (estimate.macs, estimate.sparse_macs) == (real.macs, real.sparse_macs)
    assert real.sparse_macs < real.macs < measure_costs(model, EXAMPLE).macs


def test_flops_count_every_matrix_product_attention_included_and_follow_the_scope():
    model = tiny_bert()
    costs = measure_costs(model, TOKENS[:1], flops=True)
    # per layer and head: q @ k^T and weights @ v, 5 x 5 x 4 multiply-adds each, 4 heads, 2 layers
    attention = 2 * (2 * 5 * 5 * 4 * 4) * 2
    assert costs.flops == 2 * costs.macs + attention
    assert count_flops(model, TOKENS[:1], scope=("layer.0",)) == costs.flops // 2
    assert measure_costs(model, TOKENS[:1]).flops is None  # only when asked for
    assert profile_model(model, TOKENS[:1], flops=True).flops == costs.flops


def test_macs_and_latency_budgets_need_structured_pruning():
    assert [
        parse_budget(f"{k}=0.5").needs_structure for k in ("params", "macs", "size", "latency")
    ] == [
        False,
        True,
        False,
        True,
    ]
