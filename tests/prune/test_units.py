"""Structured units: one interface over channels and transformer heads, one history codec, Calibration."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import torch
from models import TOKENS
from models import tiny_bert as _tiny_bert
from torch import nn

import autoprune.prune.units._layouts as layouts
from autoprune.apply import PrunedModel, apply_policy, load_pruned, save_pruned
from autoprune.errors import PruningError
from autoprune.policy import LayerPolicy, Policy
from autoprune.prune import Calibration, Pruner
from autoprune.prune.units import (
    AttentionLayout,
    ChannelUnits,
    HistoryEntry,
    StructuredUnits,
    TransformerUnits,
    find_layouts,
    history_to_json,
    replay_history,
    structured_units,
)
from autoprune.tasks.models import DigitsMLP, FashionCNN

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "autoprune" / "prune" / "units"


HEADS, NEURONS = "layer.0.attention.self.query", "layer.1.intermediate.dense"


# --------------------------------------------------------------------------- the interface


def test_both_kinds_of_units_meet_the_one_interface():
    channels = structured_units(DigitsMLP(), torch.zeros(1, 64))
    heads = structured_units(_tiny_bert(), TOKENS[:1])
    assert type(channels) is ChannelUnits and type(heads) is TransformerUnits
    assert isinstance(channels, StructuredUnits) and isinstance(heads, StructuredUnits)
    assert list(heads.groups) == [
        "layer.0.attention.self.query",
        "layer.0.intermediate.dense",
        "layer.1.attention.self.query",
        "layer.1.intermediate.dense",
    ]
    assert heads.original_channels[HEADS] == 4 and heads.original_channels[NEURONS] == 32
    assert heads.group_of("layer.0.attention.self.value") == HEADS


def test_the_implementations_do_not_import_each_other():
    def imported(path: Path) -> set[str]:
        tree = ast.parse(path.read_text())
        return {
            node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module
        }

    assert "autoprune.prune.units._transformer" not in imported(UNITS / "_channels.py")
    assert "autoprune.prune.units._channels" not in imported(UNITS / "_transformer.py")
    assert not any(
        name.startswith("autoprune.prune.units._") for name in imported(UNITS / "_history.py")
    )


def test_heads_and_neurons_are_removed_and_replayed_through_the_layout():
    model = _tiny_bert()
    units = TransformerUnits(model)
    units.remove(HEADS, [1, 3])
    units.remove(NEURONS, [0, 5, 6])
    attention = model.layer[0].attention.self
    assert (attention.num_attention_heads, attention.all_head_size) == (2, 8)
    assert (
        attention.key.out_features == 8 and model.layer[0].attention.output.dense.in_features == 8
    )
    assert model.layer[1].output.dense.in_features == 29
    assert model(TOKENS).shape == (3, 5, 16)
    history = units.history
    assert {e.unit: e.kind for e in history if e.removed} == {HEADS: "heads", NEURONS: "neurons"}
    again = replay_history(_tiny_bert(seed=1), TOKENS[:1], json.loads(history_to_json(history)))
    again.load_state_dict(model.state_dict())
    assert torch.equal(again(TOKENS), model(TOKENS))


def _toy_detector(prefix: str, module: nn.Module) -> AttentionLayout | None:
    """A detector for a model autoprune does not know: wq/wk/wv/wo projections and ``n_heads``."""
    if not isinstance(module, _ToyAttention):
        return None
    return AttentionLayout(
        query=f"{prefix}wq",
        key=f"{prefix}wk",
        value=f"{prefix}wv",
        output=f"{prefix}wo",
        heads=module.n_heads,
        kv_heads=module.kv_heads,
        head_dim=module.head_dim,
        block=prefix.rstrip("."),
        head_count_fields=("n_heads",),
    )


class _ToyAttention(nn.Module):
    def __init__(self, kv_heads: int = 4) -> None:
        super().__init__()
        self.n_heads, self.kv_heads, self.head_dim = 4, kv_heads, 2
        self.wq, self.wk, self.wv = (nn.Linear(8, 8 if i == 0 else 2 * kv_heads) for i in range(3))
        self.wo = nn.Linear(8, 8)


def test_another_attention_layout_is_one_more_detector(monkeypatch):
    model = _ToyAttention()
    assert find_layouts(model) == ({}, {})
    monkeypatch.setattr(
        layouts, "ATTENTION_DETECTORS", (*layouts.ATTENTION_DETECTORS, _toy_detector)
    )
    units = TransformerUnits(model)
    assert list(units.groups) == ["wq"] and units.groups["wq"].unit_size == 2
    units.remove("wq", [0])
    assert model.n_heads == 3 and model.wv.out_features == 6 and model.wo.in_features == 6
    grouped_model = _ToyAttention(kv_heads=2)
    grouped = TransformerUnits(grouped_model)
    grouped.remove("wq", [0])  # a key/value head goes with the two query heads that share it
    assert grouped_model.n_heads == 2 and grouped_model.wk.out_features == 2
    assert grouped_model.wq.out_features == 4 and grouped_model.wo.in_features == 4


# --------------------------------------------------------------------------- the history codec


@pytest.mark.parametrize(
    ("stored", "kind", "removed"),
    [
        (["conv1", True, "009"], "channels", (0, 3)),
        (["conv1", False, [2, 0]], "in_channels", (2, 0)),
        (["fc1", True, [4, 1]], "channels", (4, 1)),
        (["a.query", "heads", "0a"], "heads", (1, 3)),
        (["a.dense", "neurons", [7]], "neurons", (7,)),
    ],
)
def test_every_stored_entry_form_reads_and_writes_back_unchanged(stored, kind, removed):
    entry = HistoryEntry.from_json(stored)
    assert (entry.kind, entry.removed) == (kind, removed)
    assert entry.to_json() == stored
    assert history_to_json([stored]) == json.dumps([stored])


@pytest.mark.parametrize(
    ("stored", "pattern"),
    [
        (["fc1", "maybe", "0f"], "must be true, false, 'heads' or 'neurons'. Got 'maybe'"),
        (["fc1", True], r"must be \[unit name, kind, removed units\]"),
    ],
)
def test_a_malformed_entry_is_refused(stored, pattern):
    with pytest.raises(PruningError, match=pattern):
        HistoryEntry.from_json(stored)


def test_a_pruner_history_is_typed_and_stored_as_before():
    policy = Policy.uniform(["fc1", "fc2"], 0.25, granularity="structured")
    pruner = Pruner(DigitsMLP(), policy, calibration=Calibration(torch.zeros(1, 64)))
    pruner.step()
    history = pruner.history
    assert all(isinstance(entry, HistoryEntry) for entry in history)
    assert [(e.unit, e.kind, len(e.removed)) for e in history] == [
        ("fc1", "channels", 32),
        ("fc2", "channels", 16),
    ]
    stored = json.loads(history_to_json(history))
    assert [len(mask) for _, _, mask in stored] == [32, 16]  # fixed width: 128 and 64 channels
    assert all(kind is True for _, kind, _ in stored)


def test_an_earlier_step_by_step_history_replays_in_order():
    """Earlier versions stored torch-pruning's own history: a list of current indices per step."""
    model = replay_history(
        DigitsMLP(), torch.zeros(1, 64), [["fc1", True, [0, 1]], ["fc1", True, [0]]]
    )
    assert model.fc1.out_features == 125 and model.fc2.in_features == 125


def test_a_history_mixing_channels_and_heads_is_refused():
    with pytest.raises(PruningError, match="either channels or heads and neurons"):
        replay_history(DigitsMLP(), torch.zeros(1, 64), [["fc1", True, "1"], ["fc2", "heads", "1"]])


@pytest.mark.parametrize(
    ("directory", "conv1_channels"),
    [
        # its history removes the 15 conv1 channels of bitmask 6c9585aa, and more of conv2 and fc1
        ("results/benchmarks/fashion-cnn-structured/final", 32 - 15),
        # the demo's reference run: 13 of conv1's 32 channels removed, and more of conv2 and fc1
        ("results/reference/fashion-cnn-size0.25-latency0.6/final", 32 - 13),
    ],
)
def test_a_committed_pruned_model_still_loads(directory, conv1_channels):
    path = ROOT / directory
    if not (path / "model.safetensors").is_file():
        pytest.skip(f"{directory} is not in this checkout")
    model = load_pruned(path, build_model=FashionCNN)
    assert model.conv1.out_channels == model.conv2.in_channels == conv1_channels
    if conv1_channels < 32:
        assert model.conv2.out_channels < 64 and model.fc1.out_features < 128
    else:
        assert float((model.fc1.weight == 0).float().mean()) > 0.5
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


# --------------------------------------------------------------------------- Pruner and apply


def test_the_pruner_needs_data_only_for_data_driven_criteria():
    calibration = Calibration(torch.zeros(1, 64))
    model = DigitsMLP()
    Pruner(model, Policy.uniform(["fc1"], 0.5), calibration=calibration).step()
    assert float((model.fc1.weight == 0).float().mean()) == pytest.approx(0.5, abs=0.01)
    taylor = Policy(layers={"fc1": LayerPolicy(criterion="taylor", sparsity=0.5)})
    with pytest.raises(PruningError, match="needs calibration data and a loss"):
        Pruner(DigitsMLP(), taylor, calibration=calibration).step()


def test_the_pruner_takes_calibration_batches_not_a_task(digits_task):
    model = digits_task.new_model()
    policy = Policy(layers={"fc1": LayerPolicy(criterion="taylor", sparsity=0.5)})
    calibration = Calibration(
        digits_task.example_input, digits_task.train_data, digits_task.loss, batches=2
    )
    Pruner(model, policy, calibration=calibration).step()
    assert float((model.fc1.weight == 0).float().mean()) == pytest.approx(0.5, abs=0.01)


def test_apply_policy_returns_the_history_instead_of_hanging_it_on_the_model(tmp_path):
    policy = Policy.uniform(["fc1", "fc2"], 0.5, granularity="structured")
    torch.manual_seed(0)
    pruned = apply_policy(DigitsMLP(), policy, example_input=torch.zeros(1, 64))
    assert isinstance(pruned, PrunedModel) and not hasattr(pruned.model, "_autoprune_history")
    assert [(e.unit, len(e.removed)) for e in pruned.history] == [("fc1", 64), ("fc2", 32)]
    out = save_pruned(
        pruned.model,
        tmp_path / "out",
        policy,
        history=pruned.history,
        builder="autoprune.tasks.models:DigitsMLP",
    )
    again = load_pruned(out, example_input=torch.zeros(1, 64))
    assert again.fc1.out_features == 64 and torch.equal(again.fc2.weight, pruned.model.fc2.weight)


class _GroupedBlock(nn.Module):
    """A RegNet-like block: 1x1 conv, a grouped 3x3 conv (2 groups of 4), 1x1 conv."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 1)
        self.b = nn.Conv2d(8, 8, 3, padding=1, groups=2)
        self.c = nn.Conv2d(8, 6, 1)
        self.head = nn.Linear(6, 2)

    def forward(self, x):
        x = self.c(torch.relu(self.b(torch.relu(self.a(x)))))
        return self.head(x.mean((2, 3)))


@pytest.mark.parametrize("ratio", [0.25, 0.5, 0.4])
def test_grouped_convolutions_lose_the_same_channels_in_every_block(ratio, tmp_path):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 6, 6)
    model = _GroupedBlock()
    units = structured_units(model, x)
    assert units.channel_blocks == {"a": 2, "b": 2}
    policy = Policy.uniform(["a", "b"], ratio, granularity="structured")
    pruned = apply_policy(model, policy, example_input=x)
    b = pruned.model.b
    assert b.groups == 2 and b.in_channels == pruned.model.a.out_channels
    assert b.in_channels % 2 == 0 and b.out_channels % 2 == 0
    assert b.in_channels < 8 and b.out_channels < 8
    out = save_pruned(pruned.model, tmp_path / "m", policy, history=pruned.history)
    loaded = load_pruned(out, build_model=_GroupedBlock, example_input=x)
    assert torch.equal(loaded(x), pruned.model(x))
