"""The decoder language-model task: a character-level LLaMA on CPython's documentation."""

from __future__ import annotations

import copy

import pytest
import torch

pytest.importorskip(
    "transformers",
    reason="the transformers extra is not installed: pip install 'autoprune[transformers]'",
)

from autoprune.apply import load_pruned, save_pruned  # noqa: E402
from autoprune.policy import FinetuneRecipe, LayerPolicy, Policy  # noqa: E402
from autoprune.prune import structured_units  # noqa: E402
from autoprune.tasks import available_tasks, get_task  # noqa: E402
from autoprune.tasks.decoder import (  # noqa: E402
    CONTEXT,
    VOCAB_SIZE,
    TinyCharLlama,
    decode,
    windows,
)
from autoprune.training import dense_model, evaluate, prune_and_finetune  # noqa: E402

HEADS = "llama.model.layers.0.self_attn.q_proj"
NEURONS = "llama.model.layers.0.mlp.up_proj"


@pytest.fixture(scope="module")
def task():
    return get_task("llama-docs", tiny=True, train_size=64, val_size=16, test_size=16)


@pytest.fixture(scope="module")
def dense(task, tmp_path_factory):
    return dense_model(task, cache=tmp_path_factory.mktemp("cache"), progress=False).model


def test_the_windows_are_real_text_and_the_targets_the_next_characters():
    inputs, targets = windows(["The quick brown fox jumps over the lazy dog again and again."] * 3)
    assert inputs.shape == targets.shape == (2, CONTEXT)
    assert torch.equal(inputs[0, 1:], targets[0, :-1]) and int(inputs.max()) < VOCAB_SIZE
    assert decode(inputs[0]).startswith("The quick brown fox")


def test_the_task_is_registered_and_its_metric_is_next_token_accuracy(task):
    assert "llama-docs" in available_tasks()
    assert task.metric_name == "next_token_accuracy" and task.cost_modules == (
        "llama.model.layers",
    )
    assert task.example_input.dtype == torch.long and task.example_input.shape == (1, CONTEXT)


def test_training_beats_chance_and_the_units_are_grouped_heads_and_neurons(task, dense):
    accuracy = evaluate(dense, task.val_data, task).metric
    assert 1 / VOCAB_SIZE < accuracy <= 1.0
    units = structured_units(copy.deepcopy(dense), task.example_input)
    assert units.original_channels == {HEADS: 2, NEURONS: 64}  # 2 key/value heads of 2 queries


@pytest.mark.parametrize("criterion", ["wanda", "flap"])
def test_a_pruned_decoder_runs_and_reloads_with_equal_outputs(task, dense, criterion, tmp_path):
    layers = {
        name: LayerPolicy(granularity="structured", criterion=criterion, channel_ratio=0.5)
        for name in (HEADS, NEURONS)
    }
    policy = Policy(layers=layers, finetune=FinetuneRecipe(epochs=0))
    outcome = prune_and_finetune(copy.deepcopy(dense), policy, task)
    attention = outcome.model.llama.model.layers[0].self_attn
    assert attention.k_proj.out_features == 8 and attention.q_proj.out_features == 16
    assert outcome.model.llama.model.layers[0].mlp.down_proj.in_features == 32
    out = save_pruned(outcome.model, tmp_path / "pruned", policy, history=outcome.history)
    loaded = load_pruned(out, build_model=TinyCharLlama, example_input=task.example_input)
    x = task.test_data.tensors[0][:4]
    assert torch.equal(loaded(x), outcome.model.eval()(x))
    assert 0.0 <= evaluate(loaded, task.val_data, task).metric <= 1.0
