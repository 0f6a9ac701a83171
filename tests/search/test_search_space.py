"""Search-space files: the shipped ones load, every bad field is named."""

from __future__ import annotations

import pytest

from autoprune.errors import SearchSpaceError
from autoprune.search import SearchSpace, available_spaces, load_space


@pytest.mark.parametrize("name", ["default", "unstructured", "structured", "quick"])
def test_shipped_spaces_load_and_round_trip(name):
    space = load_space(name)
    assert space.name == name
    assert SearchSpace.from_dict(space.to_dict()) == space


def test_spaces_are_listed_and_unknown_names_refused():
    assert {"default", "unstructured", "structured"} <= set(available_spaces())
    with pytest.raises(SearchSpaceError, match="Unknown search space 'nope'. Available: .*default"):
        load_space("nope")


def test_a_space_file_by_path(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("granularities: [structured]\nfinetune: {final_epochs: 2, lr: 0.0005}\n")
    space = load_space(str(path))
    assert space.granularities == ("structured",) and space.finetune.lr == (0.0005, 0.0005)
    path.write_text("granularities: [structured\n")
    with pytest.raises(SearchSpaceError, match="not valid YAML"):
        load_space(str(path))


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        (
            {"scopes": ["local", "diagonal"]},
            r"scopes\[1\]: must be one of local, global. Got 'diagonal'",
        ),
        ({"granularities": []}, "granularities: must be a non-empty list"),
        (
            {"criteria": "taylor", "sparsity": {"high": 1.5}},
            r"sparsity.high: must be in \[0, 0.999\]. Got 1.5",
        ),
        ({"sparsity": {"low": 0.9, "high": 0.5}}, "sparsity: must be low <= high"),
        (
            {"sparsity": {"layers": {"fc1": [0.9, 0.1]}}},
            r"sparsity.layers.fc1: must be \[low, high\]",
        ),
        ({"finetune": {"lr": "fast"}}, "finetune.lr: must be a number or a"),
        ({"recovery": {"epochs": -1}}, r"recovery.epochs: must be in \[0, 1000\]"),
        ({"fitness": {"confirm_share": 2}}, r"fitness.confirm_share: must be in \[0, 1\]"),
        ({"sensitivity": {"grid": [0.5, 1.0]}}, r"sensitivity.grid\[1\]: must be in \(0, 0.999\]"),
        ({"sensitivity": {"enabled": "yes"}}, "sensitivity.enabled: must be true or false"),
        (
            {"tiers": 3, "sensitivity": {"enabled": False}},
            "tiers come from the sensitivity analysis",
        ),
        ({"round_to": -8}, r"round_to: must be"),
        ({"levels": [0.9, 0.2]}, "levels: must be distinct shares of the budget starting with 1.0"),
        ({"evolution": {"moves": [3, 1]}}, "evolution.moves: must be low <= high"),
        ({"typo": 1}, "unknown field 'typo'"),
        ({"finetune": {"epoch": 1}}, "finetune: unknown field 'epoch'"),
        ([1, 2], "must be a mapping"),
    ],
)
def test_bad_fields_are_named(data, pattern):
    with pytest.raises(SearchSpaceError, match=pattern):
        SearchSpace.from_dict(data)


def test_round_to_rounds_every_kept_channel_count_of_the_searched_policies():
    from autoprune.search._context import example_context

    space = {"granularities": ["structured"], "round_to": 8, "sensitivity": {"enabled": False}}
    ctx = example_context("params=0.5", space)
    policy = ctx.policy("structured", dict.fromkeys(ctx.units["structured"], 0.3))
    assert policy.round_to == 8
    kept = ctx.cost_model.kept_channels(policy)
    assert kept and all(n % 8 == 0 for n in kept.values()), kept
