"""The pruning engine: every criterion x granularity x scope, exactly."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch

import autoprune
from autoprune.errors import PolicyError, PruningError
from autoprune.policy import CRITERIA, SCHEDULES, FinetuneRecipe, LayerPolicy, Policy, ScheduleSpec
from autoprune.prune import Calibration, Pruner, lamp_normalise, nm_mask
from autoprune.training import prune_and_finetune

NO_FINETUNE = FinetuneRecipe(epochs=0, recalibrate_bn=False)
CONV_MASK_LAYERS = ["conv2", "conv3", "fc1"]  # conv1 has one input: N:M cannot group it
CONV_GROUPS = ["conv1", "conv3", "fc1"]  # conv2 shares conv1's channels (residual)


def _rows(outcome):
    return {row["layer"]: row for row in outcome.layers}


def _prune(dense, task, policy):
    return prune_and_finetune(copy.deepcopy(dense.model), policy, task)


@pytest.mark.parametrize("criterion", CRITERIA)
def test_unstructured_local_hits_each_request(criterion, conv_task, conv_dense):
    requests = {"conv1": 0.3, "conv2": 0.5, "conv3": 0.7, "fc1": 0.9, "fc2": 0.2}
    layers = {n: LayerPolicy(criterion=criterion, sparsity=s) for n, s in requests.items()}
    outcome = _prune(conv_dense, conv_task, Policy(layers=layers, finetune=NO_FINETUNE))
    model = outcome.model
    for name, wanted in requests.items():
        weight = dict(model.named_modules())[name].weight
        removed = weight.numel() - int(torch.count_nonzero(weight))
        assert abs(removed - round(wanted * weight.numel())) <= 1, (criterion, name)


@pytest.mark.parametrize("criterion", CRITERIA)
def test_unstructured_global_hits_the_total_and_never_empties_a_layer(
    criterion, conv_task, conv_dense
):
    names = ["conv1", "conv2", "conv3", "fc1", "fc2"]
    policy = Policy.global_ranking(
        names, 0.8, criterion=criterion, max_sparsity=0.95, finetune=NO_FINETUNE
    )
    modules = dict(_prune(conv_dense, conv_task, policy).model.named_modules())
    total = sum(modules[n].weight.numel() for n in names)
    removed = sum(
        modules[n].weight.numel() - int(torch.count_nonzero(modules[n].weight)) for n in names
    )
    assert abs(removed - round(0.8 * total)) <= 1
    for n in names:
        kept = int(torch.count_nonzero(modules[n].weight))
        assert kept >= 1 and 1 - kept / modules[n].weight.numel() <= 0.95 + 1e-9


@pytest.mark.parametrize("criterion", CRITERIA)
def test_structured_local_removes_the_requested_channels(criterion, conv_task, conv_dense):
    ratios = {"conv1": 0.5, "conv3": 0.25, "fc1": 0.75}
    layers = {
        n: LayerPolicy(granularity="structured", criterion=criterion, channel_ratio=r)
        for n, r in ratios.items()
    }
    outcome = _prune(conv_dense, conv_task, Policy(layers=layers, finetune=NO_FINETUNE))
    rows = _rows(outcome)
    for name, ratio in ratios.items():
        before = rows[name]["channels_before"]
        assert abs(rows[name]["channels_after"] - (before - round(ratio * before))) <= 1
    # conv2 is tied to conv1 by the residual addition: it loses the same channels
    assert rows["conv2"]["channels_after"] == rows["conv1"]["channels_after"]
    # the next layers lost their inputs, physically
    assert outcome.model.fc2.in_features == rows["fc1"]["channels_after"]
    assert outcome.model.fc1.in_features == rows["conv3"]["channels_after"] * 16
    assert outcome.model(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    assert rows["fc1"]["params_after"] < rows["fc1"]["params_before"]


@pytest.mark.parametrize("criterion", CRITERIA)
def test_structured_global_hits_the_total_and_keeps_every_group(criterion, conv_task, conv_dense):
    policy = Policy.global_ranking(
        CONV_GROUPS,
        0.6,
        granularity="structured",
        criterion=criterion,
        max_sparsity=0.9,
        finetune=NO_FINETUNE,
    )
    rows = _rows(_prune(conv_dense, conv_task, policy))
    before = sum(rows[n]["channels_before"] for n in CONV_GROUPS)
    after = sum(rows[n]["channels_after"] for n in CONV_GROUPS)
    assert abs((before - after) - round(0.6 * before)) <= 1
    for n in CONV_GROUPS:
        assert rows[n]["channels_after"] >= max(
            1, rows[n]["channels_before"] - int(0.9 * rows[n]["channels_before"])
        )


def test_pinned_global_structure_keeps_its_shape_through_long_fine_tuning(conv_task, conv_dense):
    from dataclasses import replace

    from autoprune.training import pin_structure

    policy = Policy.global_ranking(
        CONV_GROUPS,
        0.5,
        granularity="structured",
        criterion="taylor",
        schedule=ScheduleSpec(name="gradual", every=3),
        finetune=FinetuneRecipe(epochs=1.0, lr=3e-3),
    )
    shape = _rows(_prune(conv_dense, conv_task, replace(policy, finetune=NO_FINETUNE)))
    pinned = pin_structure(policy, list(shape.values()))
    assert pinned.scope == "local" and pinned.global_sparsity is None
    assert pinned.schedule == policy.schedule and pinned.finetune == policy.finetune
    assert Policy.from_dict(pinned.to_dict()) == pinned
    tuned = _rows(_prune(conv_dense, conv_task, pinned))
    for name in CONV_GROUPS:
        assert tuned[name]["channels_after"] == shape[name]["channels_after"], name
        assert pinned.layers[name].criterion == "taylor"
    unstructured = Policy.global_ranking(CONV_GROUPS, 0.5)
    assert pin_structure(unstructured, list(shape.values())) is unstructured
    with pytest.raises(ValueError, match="no row for layer"):
        pin_structure(policy, [shape["conv1"]])


@pytest.mark.parametrize("criterion", CRITERIA)
def test_nm_keeps_n_of_every_m_inputs(criterion, conv_task, conv_dense):
    layers = {
        n: LayerPolicy(granularity="nm", criterion=criterion, nm="2:4") for n in CONV_MASK_LAYERS
    }
    model = _prune(conv_dense, conv_task, Policy(layers=layers, finetune=NO_FINETUNE)).model
    for name in CONV_MASK_LAYERS:
        weight = dict(model.named_modules())[name].weight.detach()
        groups = (weight.movedim(1, -1).reshape(-1, 4) != 0).sum(1)
        assert int(groups.max()) <= 2
        assert abs((1 - torch.count_nonzero(weight) / weight.numel()) - 0.5) < 0.01


def test_global_scope_spares_a_fragile_looking_layer_from_being_emptied(digits_task, digits_dense):
    model = copy.deepcopy(digits_dense.model)
    with torch.no_grad():
        model.fc3.weight.mul_(1e-6)  # every fc3 weight is smaller than every other weight
    policy = Policy.global_ranking(["fc1", "fc2", "fc3"], 0.5, finetune=NO_FINETUNE, min_kept=4)
    out = prune_and_finetune(model, policy, digits_task)
    assert int(torch.count_nonzero(out.model.fc3.weight)) == 4
    assert abs(_rows(out)["fc1"]["sparsity"] - 0.5) < 0.1


def test_masks_survive_fine_tuning(digits_task, digits_dense):
    model = copy.deepcopy(digits_dense.model)
    policy = Policy.uniform(["fc1", "fc2"], 0.8, finetune=FinetuneRecipe(epochs=1, lr=1e-3))
    pruner = Pruner(model, policy, calibration=Calibration.from_task(digits_task))
    pruner.step()
    zero_before = {n: (dict(model.named_modules())[n].weight == 0).clone() for n in ("fc1", "fc2")}
    violations = []

    def check(m, step):
        for n, zeros in zero_before.items():
            if dict(m.named_modules())[n].weight[zeros].abs().sum() != 0:
                violations.append(step)

    before = model.fc1.weight.detach().clone()
    autoprune.train_model(
        model,
        digits_task,
        settings=autoprune.TrainingSettings(epochs=1, lr=1e-3),
        after_step=[pruner.masks, check],
        progress=False,
    )
    assert violations == []
    assert not torch.equal(before, model.fc1.weight)  # training did change the kept weights


@pytest.mark.parametrize("granularity", ["unstructured", "structured"])
def test_every_schedule_reaches_the_same_final_sparsity(granularity, conv_task, conv_dense):
    names = ["conv1", "conv3", "fc1"]
    results = {}
    for schedule in SCHEDULES:
        policy = Policy.uniform(
            names,
            0.6,
            granularity=granularity,
            schedule=ScheduleSpec(name=schedule, rounds=3, every=3),
            finetune=FinetuneRecipe(epochs=0.5, lr=1e-3),
        )
        rows = _rows(_prune(conv_dense, conv_task, policy))
        key = "sparsity" if granularity == "unstructured" else "channel_ratio"
        results[schedule] = [round(rows[n][key], 3) for n in names]
    assert len({tuple(r) for r in results.values()}) == 1, results


@pytest.mark.parametrize("criterion", ["random", "taylor"])
def test_iterative_pruning_is_monotone(criterion, conv_task, conv_dense):
    model = copy.deepcopy(conv_dense.model)
    pruner = Pruner(
        model,
        Policy.uniform(["conv2", "fc1"], 0.6, criterion=criterion),
        calibration=Calibration.from_task(conv_task),
    )
    pruner.step(lambda final: final / 2)
    zeros_first = (model.fc1.weight == 0).clone()
    pruner.step()
    zeros_final = model.fc1.weight == 0
    assert int(zeros_first.sum()) == round(0.3 * model.fc1.weight.numel())
    assert int(zeros_final.sum()) == round(0.6 * model.fc1.weight.numel())
    assert bool((zeros_final | ~zeros_first).all()), "a pruned weight came back"


@pytest.mark.parametrize("criterion", ["random", "taylor", "activation"])
def test_same_seed_same_result(criterion, conv_task, conv_dense):
    def run(seed):
        policy = Policy.uniform(
            ["conv2", "fc1"],
            0.5,
            criterion=criterion,
            seed=seed,
            finetune=FinetuneRecipe(epochs=0.2),
        )
        return _prune(conv_dense, conv_task, policy).model.state_dict()

    a, b = run(0), run(0)
    assert all(torch.equal(a[k], b[k]) for k in a)
    if criterion == "random":
        c = run(1)
        assert not torch.equal(a["fc1.weight"] == 0, c["fc1.weight"] == 0)


def _crafted_task():
    """Input 0 is always zero; its weight is the largest. Magnitude keeps it, the data says it is useless."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(512, 4, generator=g)
    x[:, 0] = 0.0
    y = (x[:, 1] + 0.5 * x[:, 2] > 0).long()

    def build():
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(4, 2))
        with torch.no_grad():
            model[0].weight.copy_(torch.tensor([[5.0, 1.0, 0.5, 0.2], [-5.0, -1.0, -0.5, -0.2]]))
            model[0].bias.zero_()
        return model

    return autoprune.Task(
        name="crafted",
        build_model=build,
        train_data=(x, y),
        test_data=(x, y),
        val_data=(x, y),
        epochs=0,
    )


@pytest.mark.parametrize("criterion", ["l1", "l2", "taylor", "obd", "activation"])
def test_data_driven_criteria_see_what_magnitude_cannot(criterion):
    task = _crafted_task()
    model = task.new_model()
    policy = Policy(
        layers={"0": LayerPolicy(criterion=criterion, sparsity=0.25)}, finetune=NO_FINETUNE
    )
    weight = prune_and_finetune(model, policy, task).model[0].weight
    pruned_input = (weight == 0).nonzero()[:, 1].unique().tolist()
    if criterion in ("l1", "l2"):
        assert pruned_input == [3]  # the smallest weights
    else:
        assert pruned_input == [0]  # the weights of the input that is always zero


def test_lamp_scores_are_layer_normalised():
    scores = lamp_normalise(torch.tensor([1.0, 4.0, 9.0, 16.0]))
    assert scores[-1] == 1.0  # the largest weight of any layer scores exactly 1
    assert scores.tolist() == pytest.approx([1 / 30, 4 / 29, 9 / 25, 1.0])


def test_round_to_rounds_kept_channels(conv_task, conv_dense):
    policy = Policy.uniform(
        ["fc1"], 0.3, granularity="structured", round_to=8, finetune=NO_FINETUNE
    )
    assert _rows(_prune(conv_dense, conv_task, policy))["fc1"]["channels_after"] == 24


def test_coupled_layers_must_agree(conv_task, conv_dense):
    layers = {
        "conv1": LayerPolicy(granularity="structured", channel_ratio=0.5),
        "conv2": LayerPolicy(granularity="structured", channel_ratio=0.25),
    }
    with pytest.raises(PruningError, match="'conv1' and 'conv2' are coupled"):
        Pruner(
            copy.deepcopy(conv_dense.model),
            Policy(layers=layers),
            calibration=Calibration.from_task(conv_task),
        )


@pytest.mark.parametrize(
    ("make_policy", "error", "pattern"),
    [
        (
            lambda: Policy.uniform(["fc1"], 1.0),
            PolicyError,
            r"'sparsity' parameter must be in \[0, 1\). Got 1.0",
        ),
        (lambda: Policy.uniform(["fc1"], -0.1), PolicyError, "sparsity"),
        (
            lambda: Policy.uniform(["fc1"], 0.5, granularity="nm", nm="4:4"),
            PolicyError,
            "0 < N < M",
        ),
        (
            lambda: Policy.uniform(["fc1"], 0.5, criterion="psychic"),
            PolicyError,
            "'criterion' parameter must be one of",
        ),
        (
            lambda: Policy.uniform(["fc1"], 0.5, granularity="diagonal"),
            PolicyError,
            "'granularity' parameter",
        ),
        (
            lambda: Policy.global_ranking(["fc1"], 0.5, granularity="nm"),
            PolicyError,
            "use scope 'local'",
        ),
    ],
)
def test_bad_policies_are_refused(make_policy, error, pattern):
    with pytest.raises(error, match=pattern):
        make_policy()


def test_bad_requests_for_the_model_are_refused(conv_task, conv_dense):
    def pruner(policy):
        p = Pruner(
            copy.deepcopy(conv_dense.model), policy, calibration=Calibration.from_task(conv_task)
        )
        p.step()

    with pytest.raises(
        PruningError, match="no prunable layer|does not have.*Prunable layers: conv1"
    ):
        pruner(Policy.uniform(["conv9"], 0.5))
    with pytest.raises(PruningError, match="'conv1'.*1 inputs, which M does not divide"):
        pruner(Policy.uniform(["conv1"], 0.5, granularity="nm", nm="2:4"))
    with pytest.raises(PruningError, match="'fc2' cannot be pruned structurally"):
        pruner(Policy.uniform(["fc2"], 0.5, granularity="structured"))


class _Untraceable(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(64, 8)
        self.fc2 = torch.nn.Linear(8, 10)

    def forward(self, x):
        h = self.fc1(x)
        with torch.no_grad():  # breaks the autograd graph the tracer follows
            h = h.detach().numpy()
        return self.fc2(torch.from_numpy(h))


def test_untraceable_model_gets_a_clear_error(digits_task):
    with pytest.raises(
        PruningError, match="'fc1' cannot be pruned structurally: the model cannot be traced"
    ):
        Pruner(
            _Untraceable(),
            Policy.uniform(["fc1"], 0.5, granularity="structured"),
            calibration=Calibration.from_task(digits_task),
        )


def test_nm_mask_unit():
    scores = torch.arange(16.0).view(2, 8)
    mask = nm_mask(scores, 1, 4, layer="x")
    assert mask.sum() == 4 and mask[0, 3] and mask[0, 7]
    with pytest.raises(PruningError, match="M=3 .* 8 inputs"):
        nm_mask(scores, 1, 3, layer="x")


def test_every_combination_is_addressable_by_name():
    combos = list(
        itertools.product(CRITERIA, ["unstructured", "structured", "nm"], ["local", "global"])
    )
    built = 0
    for criterion, granularity, scope in combos:
        if granularity == "nm" and scope == "global":
            continue
        if scope == "local":
            Policy.uniform(["fc1"], 0.5, granularity=granularity, criterion=criterion)
        else:
            Policy.global_ranking(["fc1"], 0.5, granularity=granularity, criterion=criterion)
        built += 1
    assert built == 5 * len(CRITERIA)  # nm has no global scope
