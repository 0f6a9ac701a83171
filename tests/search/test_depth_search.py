"""Depth in the search space: whole blocks removed, chosen jointly with the widths under the budget."""

from __future__ import annotations

import json

import torch
import yaml
from models import deep_resnet

from autoprune.apply import apply_policy, load_pruned, save_pruned
from autoprune.budgets import measure_costs
from autoprune.final import pick
from autoprune.policy import Policy
from autoprune.prune.depth import SkippedBlock
from autoprune.search import load_space, search


def _space(depth: bool) -> dict:
    space = load_space("quick").to_dict()
    space.update(granularities=["structured"], depth=depth, levels=[1.0])
    space["evolution"] = {**space["evolution"], "depth_flip": 0.5}
    return space


def test_depth_is_searched_with_the_widths_and_every_candidate_meets_the_budget(
    deep_task, tmp_path
):
    result = search(
        deep_task, "macs=0.4", space=_space(True), n_trials=14, out=tmp_path, progress=False
    )
    ctx, trials = result.context, result.trials
    assert ctx.blocks == ("layers.0", "layers.1", "layers.3", "layers.5")
    seeds = set(trials.seed.dropna())
    assert "depth1-uniform:structured@1" in seeds
    policies = [Policy.from_dict(json.loads(p)) for p in trials.policy if p]
    with_blocks = [p for p in policies if p.blocks]
    assert with_blocks and any(not p.blocks for p in policies)  # both kinds were tried
    limit = ctx.limits["macs"]
    candidates = trials[trials.recover_of.isna() & trials.feasible]
    assert (candidates.macs <= limit).all()
    # a policy with blocks, applied for real, costs what the search estimated
    policy = with_blocks[0]
    pruned = apply_policy(ctx.fresh_dense(), policy, example_input=ctx.example_input)
    assert all(isinstance(pruned.model.get_submodule(b), SkippedBlock) for b in policy.blocks)
    assert measure_costs(pruned.model, ctx.example_input).macs == ctx.estimate(policy)["macs"]
    # a candidate with blocks picked and trained into a final model: saved, reloaded, within budget
    rows = [
        row
        for row in candidates.itertuples()
        if Policy.from_dict(json.loads(row.policy)).blocks and row.fidelity == "confirmed"
    ]
    assert rows, "no confirmed candidate removes a block"
    chosen = pick(result, trial=int(rows[0].number), epochs=0.2, progress=False)
    saved = Policy.from_dict(yaml.safe_load((chosen.out / "policy.yaml").read_text())["policy"])
    assert saved.blocks == Policy.from_dict(json.loads(rows[0].policy)).blocks
    model = load_pruned(chosen.out, build_model=deep_resnet, example_input=ctx.example_input)
    assert all(isinstance(model.get_submodule(b), SkippedBlock) for b in saved.blocks)
    assert measure_costs(model, ctx.example_input).macs <= limit


def test_a_policy_with_blocks_round_trips_through_save_and_load(deep_task, tmp_path):
    torch.manual_seed(0)
    model, x = deep_resnet().eval(), torch.rand(3, 1, 8, 8)
    policy = Policy.uniform(
        ["stem.0", "layers.1.conv1", "layers.2.conv1"],
        0.5,
        granularity="structured",
        blocks=["layers.1"],
    )
    pruned = apply_policy(model, policy, example_input=x[:1])
    out = save_pruned(pruned.model, tmp_path / "m", policy, history=pruned.history)
    loaded = load_pruned(out, build_model=deep_resnet, example_input=x[:1])
    assert isinstance(loaded.layers[1], SkippedBlock)
    assert torch.equal(loaded(x), pruned.model(x))


def test_without_depth_no_block_is_removed(deep_task, tmp_path):
    result = search(
        deep_task, "macs=0.4", space=_space(False), n_trials=6, out=tmp_path, progress=False
    )
    assert result.context.blocks == ()
    assert all(not Policy.from_dict(json.loads(p)).blocks for p in result.trials.policy if p)


def test_bad_blocks_are_one_line_errors(tmp_path):
    import pytest

    from autoprune.errors import PolicyError, PruningError, SearchSpaceError

    with pytest.raises(PolicyError, match="'blocks' field must be a list"):
        Policy.from_dict({"layers": {"fc1": {"sparsity": 0.5}}, "blocks": "layers.1"})
    with pytest.raises(PolicyError, match="names a block twice"):
        Policy.uniform(["fc1"], 0.5, blocks=["a", "a"])
    assert Policy.from_dict({"layers": {}, "blocks": ["layers.1"]}).blocks == ("layers.1",)
    x = torch.rand(1, 1, 8, 8)
    downsampling = Policy.uniform(["stem.0"], 0.5, granularity="structured", blocks=["layers.2"])
    with pytest.raises(PruningError, match="'layers.2' cannot be removed: its output shape"):
        apply_policy(deep_resnet().eval(), downsampling, example_input=x)
    with pytest.raises(SearchSpaceError, match="depth"):
        load_space({**_space(True), "depth": "yes"})
