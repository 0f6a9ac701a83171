"""Input features in the search space: how many to keep is chosen with the widths under the budget."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
import yaml

from autoprune.apply import apply_policy, load_pruned, save_pruned
from autoprune.budgets import measure_costs
from autoprune.errors import PolicyError, SearchSpaceError
from autoprune.final import finalize, pick
from autoprune.policy import Policy
from autoprune.prune.inputs import SelectedInputsLinear, kept_inputs, reduce_inputs
from autoprune.search import load_space, search
from autoprune.tasks import get_task

BUILDER = "autoprune.tasks.tabular:TabularMLP"


def _space(inputs: bool) -> dict:
    space = load_space("quick").to_dict()
    space.update(inputs=inputs, levels=[1.0], granularities=["structured", "unstructured"])
    return space


@pytest.fixture(scope="module")
def tabular_run(tmp_path_factory):
    task = get_task("breast-cancer-mlp")
    out = tmp_path_factory.mktemp("inputs") / "run"
    return task, search(
        task, "params=0.3", space=_space(True), n_trials=16, out=out, progress=False
    )


def _policies(trials) -> list[tuple[int, Policy]]:
    return [
        (int(n), Policy.from_dict(json.loads(p)))
        for n, p in zip(trials.number, trials.policy, strict=True)
    ]


def test_the_number_of_input_features_is_searched_and_every_candidate_meets_the_budget(
    tabular_run,
):
    task, result = tabular_run
    ctx, trials = result.context, result.trials
    assert sorted(ctx.features) == list(range(30))  # every feature ranked once
    seeds = set(trials.seed.dropna())
    assert {"inputshalf-uniform:structured@1", "inputsquarter-uniform:unstructured@1"} <= seeds
    policies = [p for _, p in _policies(trials)]
    assert any(p.inputs is None for p in policies)
    assert {len(p.inputs) for p in policies if p.inputs} >= {15, 8}
    candidates = trials[trials.recover_of.isna() & trials.feasible]
    assert (candidates.params <= ctx.limits["params"]).all()
    assert (trials.inputs_kept.dropna() < 30).all()
    # a policy that drops features, applied for real, costs what the search estimated
    policy = next(p for p in policies if p.inputs and "fc1" in p.layers)
    pruned = apply_policy(ctx.fresh_dense(), policy, example_input=ctx.example_input)
    assert pruned.model.fc1.in_features == len(policy.inputs)
    measured = measure_costs(pruned.model, ctx.example_input)
    assert (measured.params, measured.macs) == (
        ctx.estimate(policy)["params"],
        ctx.cost_model.estimate(policy).macs,
    )


def test_a_candidate_that_drops_features_becomes_a_final_model_that_names_them(tabular_run):
    task, result = tabular_run
    number, policy = next(
        (n, p) for n, p in _policies(result.trials) if p.inputs and len(p.inputs) == 8
    )
    chosen = pick(result, trial=number, epochs=0.5, progress=False)
    saved = yaml.safe_load((chosen.out / "policy.yaml").read_text())
    assert saved["policy"]["inputs"] == list(policy.inputs)
    recorded = kept_inputs(chosen.out)
    assert recorded["kept"] == list(policy.inputs) and recorded["features"] == 30
    assert recorded["names"] == [task.feature_names[i] for i in policy.inputs]
    assert chosen.summary.inputs == recorded
    # reloaded: takes the whole input and reads the kept columns; reduced: takes those alone
    model = load_pruned(chosen.out, build_model=task.build_model)
    assert isinstance(model.fc1, SelectedInputsLinear)
    x = task.test_data.tensors[0]
    full = model(x)
    assert measure_costs(model, task.example_input).params <= result.context.limits["params"]
    assert reduce_inputs(model) == policy.inputs
    assert type(model.fc1) is torch.nn.Linear and model.fc1.in_features == 8
    assert torch.equal(model(x[:, list(policy.inputs)]), full)
    with pytest.raises(RuntimeError):
        model(x)  # the reduced model no longer takes the whole input


def test_the_report_names_the_features_the_final_model_reads(tabular_run, tmp_path):
    from autoprune.report._data import collect_report_data
    from autoprune.report._prose import final_blocks
    from autoprune.report._render import to_markdown

    task, result = tabular_run
    number = next(n for n, p in _policies(result.trials) if p.inputs and len(p.inputs) == 15)
    summary = finalize(result, top=1, progress=False)
    data = collect_report_data(result.run_dir)
    picked = pick(result, trial=number, epochs=0.2, progress=False).summary
    data = dataclasses.replace(data, final=dataclasses.replace(summary, inputs=picked.inputs))
    text = to_markdown(final_blocks(data), tmp_path)
    names = ", ".join(picked.inputs["names"])
    assert f"The final model reads 15 of its 30 input features: {names}" in text
    assert "reduce_inputs(model)" in text
    # the front's column of kept features: a number, or "all"; absent when every row keeps all
    from autoprune.report._prose_search import front_table

    front = data.front.assign(inputs_kept=float("nan"))
    assert "inputs_kept" not in front_table(dataclasses.replace(data, front=front)).columns
    front.loc[front.index[0], "inputs_kept"] = 8.0
    table = front_table(dataclasses.replace(data, front=front))
    kept = [row["inputs_kept"] for row in table.rows[:-1]]  # the last row: the dense model
    assert kept[0] == 8 and set(kept[1:]) <= {"all"}


def test_without_inputs_in_the_space_every_feature_is_kept(tmp_path):
    result = search(
        "breast-cancer-mlp",
        "params=0.3",
        space=_space(False),
        n_trials=4,
        out=tmp_path,
        progress=False,
    )
    assert result.context.features == ()
    assert all(p.inputs is None for _, p in _policies(result.trials))
    assert result.trials.inputs_kept.isna().all()


def test_a_policy_keeping_features_round_trips_through_save_and_load(tmp_path):
    task = get_task("breast-cancer-mlp")
    torch.manual_seed(0)
    model, x = task.build_model().eval(), task.val_data.tensors[0]
    policy = Policy.uniform(["fc1", "fc2"], 0.5, granularity="structured", inputs=[3, 0, 12])
    pruned = apply_policy(model, policy, example_input=x[:1])
    assert pruned.model.fc1.kept.tolist() == [0, 3, 12]
    out = save_pruned(pruned.model, tmp_path / "m", policy, history=pruned.history)
    loaded = load_pruned(out, build_model=task.build_model, example_input=x[:1])
    assert torch.equal(loaded(x), pruned.model(x))
    zeroed = x.clone()
    zeroed[:, [i for i in range(30) if i not in (0, 3, 12)]] = 0.0
    assert torch.equal(loaded(zeroed), loaded(x))  # the dropped features are not read


def test_bad_inputs_are_one_line_errors():
    task = get_task("breast-cancer-mlp")
    with pytest.raises(PolicyError, match="'inputs' field must be a non-empty list"):
        Policy.from_dict({"layers": {"fc1": {"sparsity": 0.5}}, "inputs": "all"})
    with pytest.raises(PolicyError, match="names a feature twice"):
        Policy.uniform(["fc1"], 0.5, inputs=[1, 1])
    with pytest.raises(
        PolicyError, match=r"keeps feature\(s\) \[30\], but the model's first layer 'fc1' reads 30"
    ):
        apply_policy(
            task.build_model(),
            Policy.uniform(["fc2"], 0.5, inputs=[0, 30]),
            example_input=task.example_input,
        )
    with pytest.raises(SearchSpaceError, match="inputs"):
        load_space({**_space(True), "inputs": "yes"})


def test_a_model_without_a_first_linear_layer_cannot_search_inputs(deep_task, tmp_path):
    with pytest.raises(SearchSpaceError, match="inputs: the search space .* drops input features"):
        search(
            deep_task, "params=0.5", space=_space(True), n_trials=1, out=tmp_path, progress=False
        )


def _export(directory, out, *extra) -> int:
    from autoprune.cli import main

    return main(
        ["export", str(directory), "--task", "breast-cancer-mlp", "--out", str(out), *extra]
    )


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
def test_export_can_give_a_model_that_takes_the_kept_features_alone(tabular_run, tmp_path, capsys):
    task, result = tabular_run
    number, policy = next(
        (n, p) for n, p in _policies(result.trials) if p.inputs and len(p.inputs) == 8
    )
    model_dir = pick(result, trial=number, epochs=0.2, out=tmp_path / "m", progress=False).out
    x = task.test_data.tensors[0][:16]
    expected = load_pruned(model_dir, build_model=task.build_model)(x)
    assert _export(model_dir, tmp_path / "full") == 0
    assert _export(model_dir, tmp_path / "reduced", "--reduce-inputs") == 0
    printed = capsys.readouterr().out
    assert f"takes input features {', '.join(map(str, policy.inputs))} only" in printed
    full = torch.jit.load(str(tmp_path / "full" / "model.pt"))
    reduced = torch.jit.load(str(tmp_path / "reduced" / "model.pt"))
    assert torch.allclose(full(x), expected, atol=1e-6)
    assert torch.allclose(reduced(x[:, list(policy.inputs)]), expected, atol=1e-6)
    plain = tmp_path / "plain"
    save_pruned(task.build_model(), plain, Policy.uniform(["fc1"], 0.0), builder=BUILDER)
    assert _export(plain, tmp_path / "e", "--reduce-inputs") == 2
    assert "reads every input feature" in capsys.readouterr().err
