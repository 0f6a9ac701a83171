"""The contract suites: the same checks over every criterion, every structured-unit kind, every budget kind.

In the spirit of scikit-learn's ``check_estimator``: a new criterion, a new kind
of structured unit or a new budget kind is added to the lists the suites
iterate over, and it gets every check at once.
"""

from __future__ import annotations

import copy

import pytest
import torch
from models import TOKENS, tiny_bert

from autoprune.budgets import KINDS, Budget, measure_costs, parse_budget
from autoprune.errors import BudgetError, PruningError
from autoprune.policy import CRITERIA, Policy
from autoprune.prune import Calibration, Pruner, get_criterion, replay_history, structured_units
from autoprune.prune.units import AttentionLayout, declare_layouts
from autoprune.tasks.models import DigitsMLP, FashionCNN

# ----------------------------------------------------------------------------- criteria

DATA_DRIVEN = {"taylor", "obd", "activation", "wanda", "flap"}


def _digits_calibration(digits_task) -> Calibration:
    return Calibration.from_task(digits_task, batches=2)


def _stats_for(model, criterion: str, calibration: Calibration) -> dict:
    """Statistics a criterion needs, collected the way the Pruner collects them."""
    from autoprune.prune import collect_statistics

    needs = set(get_criterion(criterion).needs)
    layers = {name: model.get_submodule(name) for name in ("fc1", "fc2", "fc3")}
    return collect_statistics(model, layers, calibration, needs=needs) if needs else {}


@pytest.mark.parametrize("criterion", CRITERIA)
def test_every_criterion_scores_every_weight_finitely_and_leaves_the_model_alone(
    criterion, digits_task, digits_dense
):
    model = copy.deepcopy(digits_dense.model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    stats = _stats_for(model, criterion, _digits_calibration(digits_task))
    scorer = get_criterion(criterion)
    for name in ("fc1", "fc2", "fc3"):
        layer = model.get_submodule(name)
        scores = scorer.weight_scores(layer, stats.get(name, {}))
        assert scores.shape == layer.weight.shape, (criterion, name)
        assert torch.isfinite(scores).all() and (scores >= 0).all(), (criterion, name)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("criterion", CRITERIA)
def test_every_criterion_is_reproducible(criterion, digits_task, digits_dense):
    def scores():
        model = copy.deepcopy(digits_dense.model)
        stats = _stats_for(model, criterion, _digits_calibration(digits_task))
        return get_criterion(criterion).weight_scores(model.fc1, stats.get("fc1", {}))

    assert torch.equal(scores(), scores())


@pytest.mark.parametrize("criterion", CRITERIA)
@pytest.mark.parametrize("granularity", ["unstructured", "structured"])
def test_every_criterion_prunes_at_every_granularity_to_the_asked_amount(
    criterion, granularity, digits_task, digits_dense
):
    model = copy.deepcopy(digits_dense.model)
    policy = Policy.uniform(["fc1", "fc2"], 0.5, granularity=granularity, criterion=criterion)
    pruner = Pruner(model, policy, calibration=_digits_calibration(digits_task))
    pruner.step()
    if granularity == "unstructured":
        for name in ("fc1", "fc2"):
            zeros = float((model.get_submodule(name).weight == 0).float().mean())
            assert zeros == pytest.approx(0.5, abs=0.01), (criterion, name)
    else:
        assert model.fc1.out_features == 64 and model.fc2.out_features == 32
    assert model(torch.zeros(2, 64)).shape == (2, 10)


@pytest.mark.parametrize("criterion", sorted(DATA_DRIVEN))
def test_a_data_driven_criterion_without_data_says_what_to_pass(criterion):
    policy = Policy.uniform(["fc1"], 0.5, criterion=criterion)
    pruner = Pruner(DigitsMLP(), policy, calibration=Calibration(example_input=torch.zeros(1, 64)))
    with pytest.raises(PruningError, match="data"):
        pruner.step()


def test_the_criteria_that_declare_no_needs_work_without_data():
    for criterion in sorted(set(CRITERIA) - DATA_DRIVEN):
        model = DigitsMLP()
        policy = Policy.uniform(["fc1"], 0.5, criterion=criterion)
        Pruner(model, policy, calibration=Calibration(example_input=torch.zeros(1, 64))).step()
        assert float((model.fc1.weight == 0).float().mean()) == pytest.approx(0.5, abs=0.01)


# ----------------------------------------------------------------------------- structured units


class _FusedAttention(torch.nn.Module):
    """timm's layout: one ``qkv`` layer and ``num_heads``/``head_dim``/``attn_dim`` fields."""

    def __init__(self) -> None:
        super().__init__()
        self.num_heads, self.head_dim, self.attn_dim = 4, 4, 16
        self.qkv, self.proj = torch.nn.Linear(16, 48), torch.nn.Linear(16, 16)

    def forward(self, x):
        b, n, _ = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        out = torch.nn.functional.scaled_dot_product_attention(*qkv.unbind(0))
        return x + self.proj(out.transpose(1, 2).reshape(b, n, self.attn_dim))


class _GroupedAttention(torch.nn.Module):
    """Grouped-query attention of a layout no detector knows, declared on the model."""

    def __init__(self) -> None:
        super().__init__()
        self.wq, self.wk, self.wv = (torch.nn.Linear(16, n) for n in (16, 8, 8))
        self.wo = torch.nn.Linear(16, 16)

    def forward(self, x):
        b, n, _ = x.shape
        q, k, v = (t(x).view(b, n, -1, 4).transpose(1, 2) for t in (self.wq, self.wk, self.wv))
        k, v = (t.repeat_interleave(q.shape[1] // k.shape[1], 1) for t in (k, v))
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v)
        return x + self.wo(out.transpose(1, 2).reshape(b, n, -1))


def _multihead_encoder():
    layer = torch.nn.TransformerEncoderLayer(16, 4, 32, batch_first=True, dropout=0.0)
    return torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)


def _grouped():
    layout = AttentionLayout("wq", "wk", "wv", "wo", heads=4, kv_heads=2, head_dim=4, block="")
    return declare_layouts(_GroupedAttention(), attention=[layout])


UNIT_KINDS = {
    "channels (an MLP)": (DigitsMLP, torch.zeros(2, 64)),
    "channels (a CNN)": (FashionCNN, torch.zeros(2, 1, 28, 28)),
    "attention heads and neurons": (tiny_bert, TOKENS),
    "heads of nn.MultiheadAttention": (_multihead_encoder, TOKENS),
    "heads of a fused qkv projection": (_FusedAttention, TOKENS),
    "grouped-query heads (declared)": (_grouped, TOKENS),
}


def _fresh(kind: str):
    build, example = UNIT_KINDS[kind]
    torch.manual_seed(0)
    return build().eval(), example


@pytest.mark.parametrize("kind", UNIT_KINDS)
def test_every_unit_kind_scores_removes_and_replays(kind):
    model, example = _fresh(kind)
    expected_shape = model(example).shape
    units = structured_units(model, example[:1])
    assert units.groups and set(units.original_channels) == set(units.groups)
    for group in units.groups:
        n = units.channels(group)
        assert n == units.original_channels[group] > 1
        scores = units.channel_scores(group, get_criterion("l1"), {})
        assert scores.shape == (n,) and torch.isfinite(scores).all()
        units.remove(group, [0])
        assert units.channels(group) == n - 1
    assert model(example).shape == expected_shape  # still runs, same outputs' shape
    fresh, _ = _fresh(kind)
    replay_history(fresh, example[:1], units.history)
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    assert {k: v.shape for k, v in fresh.state_dict().items()} == shapes


@pytest.mark.parametrize("kind", UNIT_KINDS)
def test_every_unit_kind_names_the_group_of_each_member_layer(kind):
    model, example = _fresh(kind)
    units = structured_units(model, example[:1])
    for name, group in units.groups.items():
        assert units.group_of(name) == name
        for layer in group.out_layers:
            assert units.group_of(layer) == name


@pytest.mark.parametrize("kind", UNIT_KINDS)
def test_every_unit_kind_refuses_an_unknown_layer_with_a_reason(kind):
    model, example = _fresh(kind)
    with pytest.raises(PruningError):
        structured_units(model, example[:1]).group_of("no.such.layer")


# ----------------------------------------------------------------------------- budgets

DENSE = {"params": 17226.0, "macs": 17024.0, "size": 70000.0, "latency": 2.0}


@pytest.mark.parametrize("kind", KINDS)
def test_every_budget_kind_parses_prints_and_parses_back(kind):
    budget = parse_budget(f"{kind}=0.25")
    assert (budget.kind, budget.value, budget.relative) == (kind, 0.25, True)
    assert budget.limit(DENSE[kind]) == pytest.approx(0.25 * DENSE[kind])
    assert parse_budget(f"{kind}=25%") == budget == Budget(kind, 0.25, True)
    assert kind in str(budget) and kind in budget.slug


@pytest.mark.parametrize("kind", KINDS)
def test_every_budget_kind_refuses_bad_values_naming_the_kind(kind):
    for text in (f"{kind}=-1", f"{kind}=0", f"{kind}=abc"):
        with pytest.raises(BudgetError) as error:
            parse_budget(text)
        assert "\n" not in str(error.value)


@pytest.mark.parametrize("kind", ["params", "macs", "size"])
def test_every_measured_budget_kind_falls_when_channels_are_removed(kind):
    model = DigitsMLP()
    example = torch.zeros(1, 64)
    dense = measure_costs(model, example).of(kind)
    policy = Policy.uniform(["fc1", "fc2"], 0.5, granularity="structured")
    pruner = Pruner(model, policy, calibration=Calibration(example_input=example))
    pruner.step()
    pruned = measure_costs(model, example, history=pruner.history).of(kind)
    assert 0 < pruned < dense, (kind, pruned, dense)
