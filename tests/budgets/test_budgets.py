"""Budgets: parsing, exact costs, the analytic cost model, the weights file, the latency model."""

from __future__ import annotations

import copy
import random

import pandas as pd
import pytest
import torch
from models import TOKENS, tiny_bert

from autoprune.artifact import (
    artifact_bytes,
    decode_state_dict,
    encode_state_dict,
    serialize_state_dict,
)
from autoprune.budgets import (
    CostModel,
    LatencyModel,
    measure_costs,
    parse_budget,
    parse_budgets,
    sample_latencies,
)
from autoprune.errors import BudgetError
from autoprune.policy import FinetuneRecipe, LayerPolicy, Policy
from autoprune.prune import Calibration, Pruner
from autoprune.prune.units import history_to_json
from autoprune.tasks.models import FashionCNN, FashionResNet


@pytest.mark.parametrize(
    ("text", "kind", "value", "relative"),
    [
        ("params=0.1", "params", 0.1, True),
        ("params=10%", "params", 0.1, True),
        ("params=0.25x", "params", 0.25, True),
        ("params=42000", "params", 42000, False),
        ("macs=2M", "macs", 2e6, False),
        ("macs=1.5e6", "macs", 1.5e6, False),
        ("size=0.4MB", "size", 4e5, False),
        ("size=1MiB", "size", 2**20, False),
        ("size=25%", "size", 0.25, True),
        ("latency=0.5", "latency", 0.5, True),
        ("latency=5ms", "latency", 5.0, False),
        ("LATENCY = 5.5 ms", "latency", 5.5, False),
    ],
)
def test_budget_parsing(text, kind, value, relative):
    budget = parse_budget(text)
    assert (budget.kind, budget.relative) == (kind, relative)
    assert budget.value == pytest.approx(value)


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("flops=0.5", "Unknown budget kind 'flops'; expected one of params, macs, size, latency"),
        ("params", "KIND=VALUE"),
        ("params=abc", "cannot read the value"),
        ("params=0", "positive"),
        ("params=150%", r"must be in \(0, 1\)"),
        ("size=3", "an absolute size needs a unit"),
        ("latency=7", "an absolute latency needs a unit"),
        ("macs=3ms", "an absolute macs needs a unit"),
    ],
)
def test_bad_budgets_name_the_problem(text, pattern):
    with pytest.raises(BudgetError, match=pattern):
        parse_budget(text)


def test_several_budgets_and_limits():
    budgets = parse_budgets(["params=0.1,latency=5ms", "size=0.5"])
    assert [b.kind for b in budgets] == ["params", "latency", "size"]
    assert budgets[0].limit(421642) == pytest.approx(42164.2)
    assert budgets[1].limit(999.0) == 5.0
    with pytest.raises(BudgetError, match="given more than once"):
        parse_budgets("params=0.1,params=0.2")
    with pytest.raises(BudgetError, match="At least one budget"):
        parse_budgets([])


def test_sparse_weights_file_roundtrip_and_exact_size():
    from safetensors.torch import load

    g = torch.Generator().manual_seed(0)
    w = torch.randn(64, 32, generator=g)
    w[torch.rand(64, 32, generator=g) < 0.9] = 0.0
    state = {"w": w, "b": torch.randn(64, generator=g), "n": torch.tensor(3)}
    tensors, meta = encode_state_dict(state)
    assert "w.__mask__" in tensors and "b" in tensors and "n" in tensors
    data = serialize_state_dict(state)
    assert len(data) == artifact_bytes(state) < 64 * 32 * 4
    decoded = decode_state_dict(load(data), meta)
    assert all(torch.equal(decoded[k], state[k]) for k in state)


def _random_policy(cm: CostModel, rng: random.Random, structured: bool) -> Policy:
    layers = {}
    for name in cm.layers:
        if structured and cm.group_of(name) == name and rng.random() < 0.8:
            layers[name] = LayerPolicy(granularity="structured", channel_ratio=rng.uniform(0, 0.9))
        elif not structured and rng.random() < 0.8:
            if cm.layers[name].in_dim % 4 == 0 and rng.random() < 0.3:
                layers[name] = LayerPolicy(granularity="nm", nm="2:4")
            else:
                layers[name] = LayerPolicy(sparsity=rng.uniform(0, 0.99))
    return Policy(layers=layers, finetune=FinetuneRecipe(epochs=0))


@pytest.mark.parametrize("model_class", [FashionCNN, FashionResNet])
@pytest.mark.parametrize("structured", [False, True])
def test_cost_model_equals_real_pruning(model_class, structured, digits_task):
    import dataclasses

    torch.manual_seed(0)
    model = model_class()
    example = torch.zeros(1, 1, 28, 28)
    task = dataclasses.replace(digits_task, example_input=example)
    cm = CostModel(model, example)
    rng = random.Random(1)
    for _ in range(4):
        policy = _random_policy(cm, rng, structured)
        estimate = cm.estimate(policy)
        pruned = copy.deepcopy(model)
        Pruner(pruned, policy, calibration=Calibration.from_task(task)).step()
        real = measure_costs(pruned, example)
        assert estimate.params == real.params
        assert (estimate.macs, estimate.sparse_macs) == (real.macs, real.sparse_macs)
        assert real.bytes <= estimate.bytes <= real.bytes * 1.02 + 1024


def test_the_estimated_bytes_of_a_head_and_neuron_pruned_model_equal_the_measured_ones():
    from autoprune.budgets._cost_model import ALIGNMENT

    model, example = tiny_bert(), TOKENS[:1]
    cm = CostModel(model, example)
    structured = {"granularity": "structured"}
    policy = Policy(
        layers={
            "layer.0.attention.self.query": LayerPolicy(**structured, channel_ratio=0.5),
            "layer.0.intermediate.dense": LayerPolicy(**structured, channel_ratio=0.25),
            "layer.1.attention.self.query": LayerPolicy(**structured, channel_ratio=0.25),
            "layer.1.intermediate.dense": LayerPolicy(**structured, channel_ratio=0.75),
        },
        finetune=FinetuneRecipe(epochs=0),
    )
    pruned = copy.deepcopy(model)
    pruner = Pruner(pruned, policy, calibration=Calibration(example))
    pruner.step()
    history = pruner.history
    assert [e.kind for e in cm.full_history] == ["heads", "neurons", "heads", "neurons"]
    assert [e.kind for e in history] == [e.kind for e in cm.full_history]
    # the history the estimate counts is, byte for byte, as long as the one the file stores
    assert len(history_to_json(cm.full_history)) == len(history_to_json(history))
    state = pruned.state_dict()
    added = artifact_bytes(state, history=history) - artifact_bytes(state, history=[])
    assert added <= cm.structured_history_bytes <= added + 2 * ALIGNMENT  # header padding only
    real, estimate = measure_costs(pruned, example, history=history), cm.estimate(policy)
    assert (estimate.params, estimate.macs) == (real.params, real.macs)
    assert real.bytes <= estimate.bytes


def test_latency_model_fits_and_reports_holdout_error():
    frame = pd.DataFrame({"a": [1e6 * i for i in range(1, 11)], "b": [5e5] * 10})
    frame["latency_ms"] = 0.5 + 2.0 * frame["a"] / 1e6
    model = LatencyModel(["a", "b"]).fit(frame)
    assert model.holdout_error_ < 1e-6
    assert model.predict({"a": 20e6, "b": 5e5}) == pytest.approx(40.5, rel=1e-6)


def test_latency_samples_of_a_real_model_fit_within_reason():
    samples = sample_latencies(
        FashionCNN(), torch.zeros(1, 1, 28, 28), n_samples=10, batch_size=16, repeats=5
    )
    assert len(samples) == 10 and (samples.latency_ms > 0).all()
    assert samples.loc[0, "conv2"] == 14 * 14 * 64 * 32 * 9  # the first sample is the dense model
    assert (samples.loc[0, "conv2:in"], samples.loc[0, "conv2:out"]) == (32, 64)  # its widths too
    layers = [c for c in samples.columns if c != "latency_ms" and ":" not in c]
    model = LatencyModel(layers).fit(samples)  # timings of a busy machine: only its form is checked
    assert model.predict(samples.loc[0, layers].to_dict()) > 0


def test_the_latency_model_recovers_a_known_linear_cost():
    """The fit itself, on latencies that are an exact function of the MACs (no timing involved)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    macs = pd.DataFrame(rng.integers(1_000, 1_000_000, size=(24, 3)), columns=["a", "b", "c"])
    samples = macs.assign(latency_ms=0.2 + macs @ np.array([2e-6, 5e-7, 1e-6]))
    model = LatencyModel(["a", "b", "c"]).fit(samples)
    assert model.holdout_error_ < 0.01
