"""Policy files and the production path: round trips, fingerprints, pickle-free loading."""

from __future__ import annotations

import copy
import json

import pytest
import torch
import yaml

from autoprune.apply import apply_policy, load_pruned, save_pruned
from autoprune.errors import AutopruneError, PolicyError
from autoprune.policy import FinetuneRecipe, LayerPolicy, Policy, ScheduleSpec
from autoprune.policy_file import (
    PolicyDocument,
    fingerprint,
    load_policy,
    parse_policy_document,
    save_policy,
)
from autoprune.training import prune_and_finetune

POLICY = Policy(
    layers={
        "conv1": LayerPolicy(granularity="structured", criterion="l1", channel_ratio=0.5),
        "conv3": LayerPolicy(granularity="structured", criterion="l2", channel_ratio=0.25),
        "fc1": LayerPolicy(granularity="unstructured", criterion="lamp", sparsity=0.8),
    },
    schedule=ScheduleSpec(name="iterative", rounds=2),
    finetune=FinetuneRecipe(epochs=0.5, lr=3e-4),
    seed=3,
)


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_policy_file_round_trip(tmp_path, conv_dense, suffix):
    document = PolicyDocument(
        POLICY,
        fingerprint=fingerprint(conv_dense.model),
        provenance={"task": "digits-conv"},
        results={"test_metric": 0.9},
    )
    path = tmp_path / f"policy{suffix}"
    save_policy(path, document)
    again = load_policy(path)
    assert again.policy == POLICY
    assert again.fingerprint == document.fingerprint and again.results == {"test_metric": 0.9}
    save_policy(tmp_path / f"again{suffix}", again)
    assert (tmp_path / f"again{suffix}").read_text() == path.read_text()


def test_a_bare_policy_is_migrated_and_a_newer_schema_refused(tmp_path):
    path = tmp_path / "bare.yaml"
    path.write_text(yaml.safe_dump(POLICY.to_dict()))
    assert load_policy(path).policy == POLICY
    path.write_text(yaml.safe_dump({"schema_version": 9, "policy": POLICY.to_dict()}))
    with pytest.raises(
        PolicyError, match="schema version 9 is newer than this autoprune understands"
    ):
        load_policy(path)


@pytest.mark.parametrize(
    ("mutate", "pattern"),
    [
        (
            lambda d: d["policy"]["layers"]["fc1"].update(sparsity=1.2),
            r"'sparsity' parameter must be in \[0, 1\)",
        ),
        (
            lambda d: d["policy"]["layers"]["fc1"].update(sparsity="lots"),
            "'sparsity' parameter must be a number",
        ),
        (lambda d: d["policy"].update(scope="everywhere"), "'scope' parameter must be one of"),
        (
            lambda d: d["policy"]["layers"]["fc1"].update(colour="red"),
            r"layers.fc1' has unknown field\(s\) \['colour'\]",
        ),
        (lambda d: d["policy"]["finetune"].update(lr=-1), "'lr' parameter must be in"),
        (lambda d: d.update(schema_version="one"), "'schema_version' must be an integer"),
        (lambda d: d.update(fingerprint={"fc1": "big"}), "'fingerprint' must map layer names"),
        (lambda d: d.pop("policy"), "missing the 'policy' field"),
        (lambda d: d["policy"].update(layers={}), "'layers' field must be a non-empty mapping"),
    ],
)
def test_hand_edited_files_are_refused_precisely(tmp_path, mutate, pattern):
    data = PolicyDocument(POLICY).to_dict()
    mutate(data)
    with pytest.raises(PolicyError, match=pattern):
        parse_policy_document(data)


def test_truncated_policy_file(tmp_path):
    path = tmp_path / "policy.json"
    save_policy(path, PolicyDocument(POLICY))
    path.write_text(path.read_text()[:40])
    with pytest.raises(PolicyError, match="not valid JSON"):
        load_policy(path)


def test_fingerprint_mismatch_names_the_first_layer(conv_dense, digits_dense):
    document = PolicyDocument(POLICY, fingerprint=fingerprint(conv_dense.model))
    with pytest.raises(
        PolicyError, match="layer 'conv1' \\(8, 1, 3, 3\\), which this model does not have"
    ):
        apply_policy(copy.deepcopy(digits_dense.model), document, example_input=torch.zeros(1, 64))
    wider = copy.deepcopy(conv_dense.model)
    wider.fc1 = torch.nn.Linear(256, 64)
    with pytest.raises(
        PolicyError,
        match=r"Layer 'fc1' has weight shape \(64, 256\), but the policy was found on shape \(32, 256\)",
    ):
        apply_policy(wider, document, example_input=torch.zeros(1, 1, 8, 8))


def test_apply_save_load_gives_identical_outputs(tmp_path, conv_task, conv_dense):
    import dataclasses

    from autoprune.apply import builder_path

    model = prune_and_finetune(copy.deepcopy(conv_dense.model), POLICY, conv_task, epochs=0.2)
    document = PolicyDocument(POLICY, fingerprint=fingerprint(conv_dense.model))
    save_pruned(
        model.model,
        tmp_path / "out",
        document,
        history=model.history,
        builder=builder_path(conv_task.build_model),
    )
    loaded = load_pruned(  # the policy names a test module: trusted explicitly
        tmp_path / "out",
        example_input=conv_task.example_input,
        trusted_builders=[builder_path(conv_task.build_model)],
    )
    x = torch.randn(16, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    assert torch.equal(loaded(x), model.model.eval()(x))
    assert loaded.conv1.out_channels == 4 and loaded.fc1.in_features == model.model.fc1.in_features
    assert dataclasses.is_dataclass(document)


def test_same_policy_same_checkpoint_same_seed_same_weights(conv_task, conv_dense):
    a = prune_and_finetune(
        copy.deepcopy(conv_dense.model), POLICY, conv_task, epochs=0.3
    ).model.state_dict()
    b = prune_and_finetune(
        copy.deepcopy(conv_dense.model), POLICY, conv_task, epochs=0.3
    ).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_pickle_where_weights_belong_is_refused(tmp_path, conv_task, conv_dense):
    import pickle

    from autoprune.apply import builder_path

    pruned = apply_policy(
        copy.deepcopy(conv_dense.model), POLICY, example_input=conv_task.example_input
    )
    save_pruned(
        pruned.model,
        tmp_path / "out",
        PolicyDocument(POLICY),
        history=pruned.history,
        builder=builder_path(conv_task.build_model),
    )
    (tmp_path / "out" / "model.safetensors").write_bytes(
        pickle.dumps({"fc1.weight": "not a tensor"})
    )
    with pytest.raises(AutopruneError, match="not a readable safetensors file"):
        load_pruned(
            tmp_path / "out",
            build_model=conv_task.build_model,
            example_input=conv_task.example_input,
        )


def test_data_driven_policy_needs_a_task(conv_dense):
    policy = Policy.uniform(["fc1"], 0.5, criterion="taylor")
    with pytest.raises(PolicyError, match="data-driven criterion; pass task="):
        apply_policy(copy.deepcopy(conv_dense.model), policy, example_input=torch.zeros(1, 1, 8, 8))


def test_json_and_yaml_policy_files_say_the_same(tmp_path):
    save_policy(tmp_path / "p.yaml", PolicyDocument(POLICY))
    save_policy(tmp_path / "p.json", PolicyDocument(POLICY))
    y = yaml.safe_load((tmp_path / "p.yaml").read_text())
    j = json.loads((tmp_path / "p.json").read_text())
    assert y == j


def test_a_directory_or_device_given_as_policy_file_is_named_precisely(tmp_path):
    with pytest.raises(PolicyError, match=r"^Policy file .* is a directory; give the path"):
        load_policy(tmp_path)
    with pytest.raises(PolicyError, match=r"^Policy file /dev/null is not a regular file"):
        load_policy("/dev/null")
    with pytest.raises(PolicyError, match=r"^Policy file .*missing.yaml does not exist"):
        load_policy(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("field", "value", "pattern"),
    [
        ("provenance", {"task": ["x"] * 1000}, r"'provenance' is too large: at most 256 entries"),
        ("provenance", {"a": {"b": {"c": {"d": 1}}}}, r"'provenance.a.b.c' is nested too deeply"),
        ("provenance", {"seed": {1, 2}}, r"'provenance.seed' must be plain data"),
        ("provenance", ["task"], r"'provenance' must be a mapping"),
        ("results", {"trials": list(range(5000))}, r"'results' is too large: at most 4096 entries"),
        (
            "results",
            {"a": {"b": {"c": {"d": {"e": {}}}}}},
            r"'results.a.b.c.d.e' is nested too deeply",
        ),
        ("results", {"metric": "m" * 5000}, r"'results.metric' is a string of 5,000 characters"),
        ("results", 3, r"'results' must be a mapping"),
    ],
)
def test_provenance_and_results_are_small_plain_data(field, value, pattern):
    data = PolicyDocument(POLICY).to_dict()
    data[field] = value
    with pytest.raises(PolicyError, match=r"^p\.yaml: " + pattern) as info:
        parse_policy_document(data, source="p.yaml")
    assert len(str(info.value)) < 400 and "\n" not in str(info.value)


def test_results_as_deep_as_allowed_are_kept():
    data = PolicyDocument(POLICY).to_dict()
    data["results"] = {"a": {"b": {"c": {"d": {"e": 1}}}}, "n": list(range(4000))}
    data["provenance"] = {"task": "digits-conv", "input_shape": [1, 1, 8, 8]}
    document = parse_policy_document(data)
    assert document.results == data["results"] and document.provenance == data["provenance"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("kind", "k" * 100_000),
        ("schema_version", "9" * 100_000),
        ("schema_version", 10**5000),
        ("schema_version", -(10**5000)),
        ("x" * 100_000, 1),
    ],
    ids=["kind", "version-text", "version-huge", "version-negative", "unknown-field"],
)
def test_echoed_values_are_capped(field, value):
    data = PolicyDocument(POLICY).to_dict()
    data[field] = value
    with pytest.raises(PolicyError) as info:
        parse_policy_document(data, source="s" * 10_000)
    message = str(info.value)
    assert len(message) < 600 and "\n" not in message and "..." in message


def test_a_value_shared_by_provenance_and_results_is_written_out_twice(tmp_path):
    shared = ["params=0.1", "latency=5ms"]
    document = PolicyDocument(POLICY, provenance={"budget": shared}, results={"budget": shared})
    path = tmp_path / "policy.yaml"
    save_policy(path, document)
    assert "&" not in path.read_text() and "*" not in path.read_text()
    again = load_policy(path)
    assert again.provenance["budget"] == again.results["budget"] == shared
