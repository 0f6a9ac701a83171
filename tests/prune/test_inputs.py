"""Input-feature pruning: the first linear layer loses input columns, the model asks for fewer inputs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from autoprune.apply import load_pruned, save_pruned
from autoprune.errors import AutopruneError, ParameterError, PolicyError, PruningError
from autoprune.prune.inputs import kept_inputs, prune_inputs
from autoprune.tasks.tabular import TabularMLP

BUILDER = "autoprune.tasks.tabular:TabularMLP"


def _model(seed: int = 0) -> TabularMLP:
    torch.manual_seed(seed)
    return TabularMLP().eval()


def test_the_pruned_model_takes_the_kept_columns_and_matches_the_model_with_the_others_zeroed():
    model = _model()
    result = prune_inputs(model, 10)
    assert result.model.fc1.in_features == 10 and model.fc1.in_features == 30  # a copy
    assert len(result.kept) == 10 and list(result.kept) == sorted(result.kept)
    zeroed = _model()
    removed = [i for i in range(30) if i not in result.kept]
    with torch.no_grad():
        zeroed.fc1.weight[:, removed] = 0.0
    x = torch.randn(64, 30, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = zeroed(x)
        assert torch.allclose(result.model(x[:, list(result.kept)]), expected, atol=1e-6)
        assert torch.allclose(result.model(result.select(x)), expected, atol=1e-6)


def test_the_kept_features_are_those_of_the_largest_weight_columns():
    model = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 2))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 5.0, 0.1, 3.0, 0.2]]).repeat(4, 1))
    assert prune_inputs(model, 2).kept == (1, 3)
    # activation: mean |x_j| * ||W[:, j]||; a feature that is always zero goes first
    data = torch.ones(8, 5)
    data[:, 1] = 0.0
    assert prune_inputs(model, 2, criterion="activation", data=data).kept == (0, 3)
    assert prune_inputs(model, [4, 0]).kept == (0, 4)  # explicit indices, kept ascending


def test_save_and_load_keep_the_narrower_input(tmp_path):
    result = prune_inputs(_model(), 7, feature_names=[f"f{i}" for i in range(30)])
    out = save_pruned(
        result.model, tmp_path / "out", result.document(), history=result.history, builder=BUILDER
    )
    again = load_pruned(out, trusted_builders=BUILDER)
    assert again.fc1.in_features == 7
    assert torch.equal(again.fc1.weight, result.model.fc1.weight)
    recorded = kept_inputs(out)
    assert recorded["kept"] == list(result.kept) and recorded["features"] == 30
    assert recorded["names"] == [f"f{i}" for i in result.kept]
    x = torch.randn(4, 30)
    with torch.no_grad():
        assert torch.equal(again(x[:, recorded["kept"]]), result.model(result.select(x)))


def test_input_pruning_adds_to_a_structured_history(tmp_path):
    from autoprune.apply import apply_policy
    from autoprune.policy import Policy

    policy = Policy.uniform(["fc1"], 0.5, granularity="structured")
    structured = apply_policy(_model(), policy, example_input=torch.zeros(1, 30))
    result = prune_inputs(structured.model, 12, history=structured.history)
    assert [e.kind for e in result.history][-1] == "in_channels"
    out = save_pruned(
        result.model,
        tmp_path / "out",
        result.document(policy),
        history=result.history,
        builder=BUILDER,
    )
    again = load_pruned(out, trusted_builders=BUILDER)
    assert (again.fc1.in_features, again.fc1.out_features) == (12, 32)
    assert torch.equal(again.fc2.weight, result.model.fc2.weight)
    with pytest.raises(PruningError, match="inputs of layer 'fc1' were pruned already"):
        prune_inputs(result.model, 5, history=result.history)


@pytest.mark.parametrize(
    ("keep", "shown"),
    [
        (0, "Got 0 instead"),
        (31, "Got 31 instead"),
        (2.5, "Got 2.5 instead"),
        (True, "Got True instead"),
        ([3, 3], "Got [3, 3] instead"),
        ([30], "Got [30] instead"),
    ],
)
def test_a_bad_number_of_features_is_one_line_naming_the_parameter(keep, shown):
    with pytest.raises(AutopruneError) as caught:
        prune_inputs(_model(), keep)
    message = str(caught.value)
    assert isinstance(caught.value, ParameterError) and "\n" not in message
    assert message.startswith("The 'keep' parameter must be an integer in [1, 30]")
    assert message.endswith(f"{shown}.") or shown + " instead." in message


def test_other_refusals_name_what_is_wrong(tmp_path):
    with pytest.raises(ParameterError, match="'feature_names' parameter must be 30 strings"):
        prune_inputs(_model(), 3, feature_names=["a"])
    with pytest.raises(ParameterError, match="'data' parameter"):
        prune_inputs(_model(), 3, criterion="activation")
    with pytest.raises(ParameterError, match="'criterion'"):
        prune_inputs(_model(), 3, criterion="taylor")
    conv = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2, 2))
    with pytest.raises(PruningError, match="first layer '0' is Conv2d"):
        prune_inputs(conv, 1)
    with pytest.raises(PruningError, match="does not read the model's input"):
        prune_inputs(_model(), 3, layer="fc2")
    plain = save_pruned(_model(), tmp_path / "plain", prune_inputs(_model(), 30).document())
    assert kept_inputs(plain)["kept"] == list(range(30))  # keeping everything is recorded too
    from autoprune.policy import Policy

    other = save_pruned(_model(), tmp_path / "other", Policy.uniform(["fc1"], 0.0))
    with pytest.raises(PolicyError, match="results.inputs"):
        kept_inputs(other)


def test_the_report_names_the_tasks_kept_features():
    from autoprune.tasks import get_task

    task = get_task("breast-cancer-mlp")
    result = prune_inputs(_model(), [0, 1, 27], feature_names=task.feature_names)
    assert result.names == ("mean radius", "mean texture", "worst concave points")
    assert result.summary() == (
        "Kept 3 of 30 input features: mean radius, mean texture, worst concave points."
    )
    assert result.document().results["inputs"]["names"] == list(result.names)
