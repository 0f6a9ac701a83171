"""The production path refuses what is not its own: output directories, builders, tampered weights, NaN."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from autoprune.apply import (
    BUILTIN_BUILDERS,
    PrunedModel,
    apply_policy,
    builder_path,
    import_builder,
    load_pruned,
    save_pruned,
)
from autoprune.artifact import HISTORY_KEY
from autoprune.cli import main
from autoprune.errors import AutopruneError, PolicyError
from autoprune.export import export_model
from autoprune.policy import Policy
from autoprune.policy_file import PolicyDocument, fingerprint, load_policy, save_policy
from autoprune.tasks.models import DigitsMLP

DIGITS = "autoprune.tasks.models:DigitsMLP"
EXAMPLE = torch.zeros(1, 64)
UNSTRUCTURED = Policy.uniform(["fc1", "fc2"], 0.9)
STRUCTURED = Policy.uniform(["fc1", "fc2"], 0.5, granularity="structured")


def _applied(policy: Policy = UNSTRUCTURED, seed: int = 0) -> PrunedModel:
    torch.manual_seed(seed)
    return apply_policy(DigitsMLP(), policy, example_input=EXAMPLE)


def _pruned(policy: Policy = UNSTRUCTURED, seed: int = 0) -> torch.nn.Module:
    return _applied(policy, seed).model


def _document(policy: Policy = UNSTRUCTURED, **provenance) -> PolicyDocument:
    return PolicyDocument(
        policy,
        fingerprint=fingerprint(DigitsMLP()),
        provenance={"builder": DIGITS, "input_shape": [1, 64], **provenance},
    )


def _one_line_cli(argv, capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("autoprune: error:") and err.count("\n") == 1, err
    return err


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """An untrained DigitsMLP's weights: apply runs in a second, no training."""
    from autoprune._weights import save_weights

    path = tmp_path_factory.mktemp("checkpoint") / "dense.safetensors"
    torch.manual_seed(0)
    save_weights(path, DigitsMLP().state_dict())
    return path


@pytest.fixture(scope="module")
def policy_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("policy") / "policy.yaml"
    save_policy(path, PolicyDocument(UNSTRUCTURED, fingerprint=fingerprint(DigitsMLP())))
    return path


def _apply(policy_path, checkpoint, out, *extra):
    return [
        "apply",
        str(policy_path),
        "--task",
        "digits-mlp",
        "--checkpoint",
        str(checkpoint),
        "--out",
        str(out),
        "--quiet",
        *extra,
    ]


# --------------------------------------------------------------------------- output directories


def _user_files(directory):
    (directory / "sub").mkdir(parents=True)
    (directory / "notes.txt").write_text("mine")
    (directory / "sub" / "data.bin").write_bytes(b"\x00\x01")
    return {"notes.txt": b"mine", "sub/data.bin": b"\x00\x01"}


def _unchanged(directory, files) -> bool:
    return all((directory / name).read_bytes() == content for name, content in files.items())


def test_save_pruned_refuses_a_directory_it_did_not_write(tmp_path):
    out = tmp_path / "run"
    files = _user_files(out)
    with pytest.raises(AutopruneError, match="overwrite") as info:
        save_pruned(_pruned(), out, _document())
    assert str(out) in str(info.value) and "notes.txt" in str(info.value)
    assert _unchanged(out, files) and sorted(p.name for p in out.iterdir()) == ["notes.txt", "sub"]
    assert not (tmp_path / "run.partial").exists() and not (tmp_path / "run.old").exists()


def test_save_pruned_never_replaces_a_file(tmp_path):
    out = tmp_path / "model"
    out.write_text("a file of mine")
    for overwrite in (False, True):
        with pytest.raises(AutopruneError, match="is not a directory"):
            save_pruned(_pruned(), out, _document(), overwrite=overwrite)
    assert out.read_text() == "a file of mine" and not (tmp_path / "model.old").exists()
    target = tmp_path / "elsewhere"
    target.mkdir()
    (tmp_path / "link").symlink_to(target)
    with pytest.raises(AutopruneError, match="is not a directory"):
        save_pruned(_pruned(), tmp_path / "link", _document(), overwrite=True)
    (target / "policy.yaml").mkdir()  # a directory where the policy goes is never replaced either
    with pytest.raises(AutopruneError, match="policy.yaml is not a file"):
        save_pruned(_pruned(), target, _document(), overwrite=True)
    assert [p.name for p in target.iterdir()] == ["policy.yaml"]


def test_overwrite_replaces_only_the_files_autoprune_writes(tmp_path):
    out = tmp_path / "run"
    files = _user_files(out)
    (out / "policy.yaml").write_text("an old policy")
    model = _pruned()
    save_pruned(model, out, _document(), overwrite=True)
    assert _unchanged(out, files)
    assert sorted(p.name for p in out.iterdir()) == [
        "model.safetensors",
        "notes.txt",
        "policy.yaml",
        "sub",
    ]
    assert torch.equal(load_pruned(out).fc1.weight, model.fc1.weight)
    assert not (tmp_path / "run.partial").exists()


def test_a_previous_output_is_replaced_whole(tmp_path):
    out = tmp_path / "pruned"
    save_pruned(_pruned(seed=0), out, _document())
    second = _applied(STRUCTURED, seed=1)
    # its own earlier output: no overwrite needed
    save_pruned(second.model, out, _document(STRUCTURED), history=second.history)
    assert sorted(p.name for p in out.iterdir()) == ["model.safetensors", "policy.yaml"]
    assert load_pruned(out).fc1.weight.shape == second.model.fc1.weight.shape == (64, 64)


def test_the_staging_directory_is_reused_only_when_it_is_autoprunes(tmp_path):
    out, staging = tmp_path / "pruned", tmp_path / "pruned.partial"
    staging.mkdir()
    (staging / "keep.txt").write_text("mine")
    with pytest.raises(AutopruneError, match="staging directory .*keep.txt"):
        save_pruned(_pruned(), out, _document(), overwrite=True)
    assert (staging / "keep.txt").read_text() == "mine" and not out.exists()
    (staging / "keep.txt").unlink()
    (staging / "policy.yaml").write_text("half of an interrupted save")
    (staging / ".model.safetensors.x1y2.tmp").write_bytes(b"partial")
    save_pruned(_pruned(), out, _document())
    assert not staging.exists() and load_pruned(out).fc1.weight.shape == (128, 64)


def test_report_staging_call_still_works(tmp_path):
    """How the report writes its final model: into a fresh ``final.partial``, with a history."""
    pruned = _applied(STRUCTURED)
    out = save_pruned(
        pruned.model, tmp_path / "final.partial", _document(STRUCTURED), history=pruned.history
    )
    assert out == tmp_path / "final.partial"
    assert torch.equal(load_pruned(out).fc2.weight, pruned.model.fc2.weight)


def test_cli_apply_refuses_a_foreign_out_and_writes_with_overwrite(
    tmp_path, policy_path, checkpoint, capsys
):
    out = tmp_path / "run"
    files = _user_files(out)
    err = _one_line_cli(_apply(policy_path, checkpoint, out), capsys)
    assert str(out) in err and "--overwrite" in err
    assert _unchanged(out, files) and not (out / "policy.yaml").exists()
    assert main(_apply(policy_path, checkpoint, out, "--overwrite")) == 0
    assert _unchanged(out, files) and (out / "model.safetensors").is_file()
    assert main(_apply(policy_path, checkpoint, tmp_path / "fresh")) == 0
    assert main(_apply(policy_path, checkpoint, tmp_path / "fresh")) == 0  # its own output again


def _export(directory, out, *extra):
    return ["export", str(directory), "--out", str(out), *extra]


@pytest.fixture
def pruned_dir(tmp_path):
    directory = tmp_path / "pruned"
    save_pruned(_pruned(), directory, _document())
    return directory


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
def test_cli_export_refuses_a_foreign_out_and_writes_with_overwrite(tmp_path, pruned_dir, capsys):
    out = tmp_path / "run"
    files = {**_user_files(out), "model.pt": b"an old export"}
    (out / "model.pt").write_bytes(b"an old export")
    err = _one_line_cli(_export(pruned_dir, out), capsys)
    assert str(out) in err and "--overwrite" in err and "notes.txt" in err
    assert "autoprune export did not write" in err
    assert _unchanged(out, files) and sorted(p.name for p in out.iterdir()) == [
        "model.pt",
        "notes.txt",
        "sub",
    ]
    assert main(_export(pruned_dir, out, "--overwrite")) == 0
    del files["model.pt"]
    assert _unchanged(out, files) and sorted(p.name for p in out.iterdir()) == [
        "model.pt",
        "notes.txt",
        "sub",
    ]
    assert torch.jit.load(str(out / "model.pt"))(EXAMPLE).shape == (1, 10)


def test_cli_export_into_the_model_directory_needs_overwrite(pruned_dir, capsys):
    before = {p.name: p.read_bytes() for p in pruned_dir.iterdir()}
    err = _one_line_cli(_export(pruned_dir, pruned_dir), capsys)
    assert "model.safetensors, policy.yaml" in err and "--overwrite" in err
    assert sorted(p.name for p in pruned_dir.iterdir()) == sorted(before)
    assert main(_export(pruned_dir, pruned_dir, "--overwrite")) == 0
    assert _unchanged(pruned_dir, before) and (pruned_dir / "model.pt").is_file()


def test_an_earlier_export_is_replaced_without_overwrite(tmp_path, pruned_dir):
    out = tmp_path / "exported"
    assert main(_export(pruned_dir, out)) == 0
    (out / ".model.pt.999999999.ab12.tmp").write_bytes(b"left by a killed export")
    (out / "model.pt").write_bytes(b"an old export")
    assert main(_export(pruned_dir, out, "--format", "torchscript")) == 0  # its own output again
    assert (out / "model.pt").read_bytes()[:2] == b"PK"  # a TorchScript archive again
    assert sorted(p.name for p in out.iterdir()) == [".model.pt.999999999.ab12.tmp", "model.pt"]


def test_export_writes_only_its_own_files_and_accepts_them_again(tmp_path):
    from autoprune.export import EXPORT_FILES

    out = tmp_path / "e"
    model = _pruned()
    rows = export_model(model, EXAMPLE, out, formats=("torchscript", "onnx"), quantize=True)
    assert sorted(p.name for p in out.iterdir()) == sorted(EXPORT_FILES)
    assert sorted(Path(r["file"]).name for r in rows) == sorted(EXPORT_FILES)
    assert len(export_model(model, EXAMPLE, out, formats=("torchscript",))) == 1


def test_export_model_refuses_a_foreign_directory_unless_overwrite(tmp_path):
    out = tmp_path / "mine"
    files = _user_files(out)
    with pytest.raises(AutopruneError, match="overwrite=True") as info:
        export_model(_pruned(), EXAMPLE, out, formats=("torchscript",))
    assert "notes.txt" in str(info.value) and not (out / "model.pt").exists()
    export_model(_pruned(), EXAMPLE, out, formats=("torchscript",), overwrite=True)
    assert _unchanged(out, files) and (out / "model.pt").is_file()


def test_export_never_replaces_a_file_or_link(tmp_path, pruned_dir, capsys):
    out = tmp_path / "model.pt"
    out.write_text("a file of mine")
    for overwrite in (False, True):
        err = _one_line_cli(_export(pruned_dir, out, *(["--overwrite"] * overwrite)), capsys)
        assert "not a directory" in err
        with pytest.raises(AutopruneError, match="exists and is not a directory"):
            export_model(_pruned(), EXAMPLE, out, formats=("torchscript",), overwrite=overwrite)
    assert out.read_text() == "a file of mine"
    target = tmp_path / "elsewhere"
    target.mkdir()
    (tmp_path / "link").symlink_to(target)
    err = _one_line_cli(_export(pruned_dir, tmp_path / "link", "--overwrite"), capsys)
    assert "is not a directory" in err and not any(target.iterdir())
    (target / "model.pt").mkdir()  # a directory where the model goes is never replaced
    err = _one_line_cli(_export(pruned_dir, target, "--overwrite"), capsys)
    assert "model.pt is not a file" in err
    (target / "model.pt").rmdir()
    (target / "model.pt").symlink_to(out)  # nor a link, nor the file it points to
    err = _one_line_cli(_export(pruned_dir, target, "--overwrite"), capsys)
    assert "model.pt is not a file" in err and out.read_text() == "a file of mine"
    assert [p.name for p in target.iterdir()] == ["model.pt"] and (target / "model.pt").is_symlink()


# --------------------------------------------------------------------------- builders


PLANTED = """
import pathlib
pathlib.Path({marker!r}).write_text("imported")
from autoprune.tasks.models import DigitsMLP as Model
"""


@pytest.fixture
def planted(tmp_path, monkeypatch):
    """A model directory whose policy names a module planted next to it (it marks its import)."""
    marker = tmp_path / "imported.marker"
    (tmp_path / "planted_builder.py").write_text(PLANTED.format(marker=str(marker)))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("AUTOPRUNE_TRUSTED_BUILDERS", raising=False)
    directory = tmp_path / "pruned"
    save_pruned(_pruned(), directory, _document(builder="planted_builder:Model"))
    yield directory, marker
    sys.modules.pop("planted_builder", None)


def test_a_builder_named_by_the_policy_alone_is_not_imported(planted):
    directory, marker = planted
    assert load_policy(directory / "policy.yaml").provenance["builder"] == "planted_builder:Model"
    with pytest.raises(
        PolicyError, match="'planted_builder:Model', which is not a trusted"
    ) as info:
        load_pruned(directory)
    assert "build_model=" in str(info.value) and "AUTOPRUNE_TRUSTED_BUILDERS" in str(info.value)
    assert not marker.exists() and "planted_builder" not in sys.modules


def test_cli_export_does_not_import_the_policys_builder(planted, tmp_path, capsys):
    directory, marker = planted
    err = _one_line_cli(["export", str(directory), "--out", str(tmp_path / "e")], capsys)
    assert "planted_builder:Model" in err and "--task" in err
    # run as `python -c` from the model's parent directory: the planted module is importable there
    code = "import sys; from autoprune.cli import main; sys.exit(main(sys.argv[1:]))"
    result = subprocess.run(
        [sys.executable, "-c", code, "export", "pruned", "--out", "e2"],
        cwd=directory.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "not a trusted builder" in result.stderr, result.stderr
    assert not marker.exists()
    # with --task the task's builder is used, and the policy's is never looked at
    assert (
        main(["export", str(directory), "--task", "digits-mlp", "--out", str(tmp_path / "e3")]) == 0
    )
    assert not marker.exists() and (tmp_path / "e3" / "model.pt").is_file()


def test_a_builder_can_be_trusted_by_argument_or_environment(planted, monkeypatch):
    directory, marker = planted
    assert load_pruned(directory, trusted_builders=["planted_builder:Model"]).fc1.in_features == 64
    assert marker.exists()
    monkeypatch.setenv("AUTOPRUNE_TRUSTED_BUILDERS", "x.y:Z, planted_builder:Model")
    assert load_pruned(directory).fc1.in_features == 64


def test_os_abort_in_a_policy_is_refused_without_import(tmp_path):
    directory = tmp_path / "pruned"
    save_pruned(_pruned(), directory, _document(builder="os:abort"))
    code = "import sys; from autoprune.apply import load_pruned; load_pruned(sys.argv[1])"
    result = subprocess.run(
        [sys.executable, "-c", code, str(directory)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1, (result.returncode, result.stderr)  # not killed by SIGABRT
    assert "PolicyError" in result.stderr and "'os:abort', which is not a trusted" in result.stderr


@pytest.mark.parametrize(
    "builder", [".models:DigitsMLP", "os:abort()", "os", "a b:c", ":x", "os:", "os:system;x", 42]
)
def test_a_malformed_builder_is_refused(builder):
    with pytest.raises(PolicyError, match="must be 'module:qualname'"):
        import_builder(builder, trusted=[str(builder)])


def test_the_builtin_builders_are_those_of_the_builtin_tasks():
    from autoprune.tasks import get_task
    from autoprune.tasks.models import FashionCNN, FashionResNet

    assert builder_path(get_task("digits-mlp").build_model) in BUILTIN_BUILDERS
    assert {builder_path(FashionCNN), builder_path(FashionResNet)} <= set(BUILTIN_BUILDERS)
    for name in BUILTIN_BUILDERS:
        module = name.partition(":")[0]
        if module != "autoprune.tasks.minilm":  # its builder needs the transformers extra to run
            assert issubclass(import_builder(name), torch.nn.Module)


def test_cli_apply_writes_the_tasks_own_builder_and_input(tmp_path, checkpoint, capsys):
    path = tmp_path / "policy.yaml"
    document = _document(input_dtype="int64")
    document.provenance.update(builder="os:abort", input_shape=[9, 9, 9])
    save_policy(path, document)
    assert main(_apply(path, checkpoint, tmp_path / "out")) == 0
    written = load_policy(tmp_path / "out" / "policy.yaml").provenance
    assert written["builder"] == DIGITS
    assert written["input_shape"] == [1, 64] and written["input_dtype"] == "float32"


# --------------------------------------------------------------------------- tampered weights


def _rewrite(path, *, metadata=None, tensors=None):
    """Re-save the safetensors file at ``path`` with some metadata or tensors changed."""
    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata())
        stored = {k: f.get_tensor(k) for k in f.keys()}
    meta.update(metadata or {})
    stored.update(tensors or {})
    save_file({k: v for k, v in stored.items() if v is not None}, str(path), metadata=meta)


@pytest.fixture
def sparse_dir(tmp_path):
    directory = tmp_path / "pruned"
    save_pruned(_pruned(), directory, _document())
    with safe_open(str(directory / "model.safetensors"), framework="pt") as f:
        assert "fc1.weight" in json.loads(f.metadata()["sparse"])
    return directory


@pytest.mark.parametrize(
    ("shape", "pattern"),
    [
        (
            [1_000_000, 1_000_000],
            r"has shape \[1000000, 1000000\], but the rebuilt model's has \[128, 64\]",
        ),
        ([30000, 30000], r"has shape \[30000, 30000\], but the rebuilt model's has \[128, 64\]"),
        ([128, -64], "list of at most 8 non-negative integers"),
        ([128, 64.0], "list of at most 8 non-negative integers"),
        ("128x64", "list of at most 8 non-negative integers"),
    ],
)
def test_a_tampered_sparse_shape_is_refused_before_allocating(sparse_dir, shape, pattern):
    weights = sparse_dir / "model.safetensors"
    with safe_open(str(weights), framework="pt") as f:
        sparse = json.loads(f.metadata()["sparse"])
    _rewrite(weights, metadata={"sparse": json.dumps({**sparse, "fc1.weight": shape})})
    with pytest.raises(AutopruneError, match=pattern) as info:
        load_pruned(sparse_dir)
    assert str(weights) in str(info.value) and "'fc1.weight'" in str(info.value)
    assert "\n" not in str(info.value)


def test_a_sparse_entry_its_mask_cannot_hold_is_refused(sparse_dir):
    from autoprune.artifact import decode_state_dict

    weights = sparse_dir / "model.safetensors"
    with safe_open(str(weights), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        meta = f.metadata()
    huge = json.dumps({**json.loads(meta["sparse"]), "fc1.weight": [1_000_000, 1_000_000]})
    with pytest.raises(
        AutopruneError, match=r"1000000000000 elements\), which its mask of 1024 bytes"
    ):
        decode_state_dict(tensors, {**meta, "sparse": huge}, source="w")  # no model to compare with
    _rewrite(weights, tensors={"fc1.weight.__mask__": tensors["fc1.weight.__mask__"][:-1]})
    with pytest.raises(AutopruneError, match=f"{weights}: sparse tensor 'fc1.weight' has shape"):
        load_pruned(sparse_dir)


@pytest.fixture
def structured_dir(tmp_path):
    directory = tmp_path / "pruned"
    pruned = _applied(STRUCTURED)
    save_pruned(pruned.model, directory, _document(STRUCTURED), history=pruned.history)
    return directory


@pytest.mark.parametrize(
    ("history", "pattern"),
    [
        ([["fc1", True, "f" * 200_000]], r"entry 0 \('fc1'\) must list removed units .* below 128"),
        ([["fc1", True, list(range(200_000))]], r"entry 0 \('fc1'\) must list removed units"),
        ([["fc1", True, [1, -1]]], r"entry 0 \('fc1'\) must list removed units"),
        ([["fc1", True, "zz"]], r"entry 0 \('fc1'\) must list removed units"),
        ([["fc9", True, "ff"]], "entry 0 names module 'fc9', which the model does not have"),
        ([["fc1", "maybe", "ff"]], r"entry 0 \('fc1'\) must have a kind of"),
        ([["fc1", True]], r"entry 0 must be \[module name, kind, removed units\]"),
        ([["fc1", True, "ff"]] * 50, "has 50 entries, more than the model's 4 modules"),
        ({"fc1": "ff"}, "history must be a list. Got dict instead"),
    ],
)
def test_a_tampered_history_is_refused_before_replay(structured_dir, history, pattern):
    weights = structured_dir / "model.safetensors"
    _rewrite(weights, metadata={HISTORY_KEY: json.dumps(history)})
    with pytest.raises(AutopruneError, match=pattern) as info:
        load_pruned(structured_dir)
    assert str(weights) in str(info.value) and len(str(info.value)) < 400


def test_a_history_that_is_not_json_is_refused(structured_dir):
    weights = structured_dir / "model.safetensors"
    _rewrite(weights, metadata={HISTORY_KEY: "[[" * 100_000})
    with pytest.raises(AutopruneError, match="history is not valid JSON"):
        load_pruned(structured_dir)


def test_an_oversized_input_shape_is_refused(structured_dir):
    document = load_policy(structured_dir / "policy.yaml")
    document.provenance["input_shape"] = [100_000, 100_000, 100]
    save_policy(structured_dir / "policy.yaml", document)
    with pytest.raises(PolicyError, match="'input_shape' must be a list of at most 8 positive"):
        load_pruned(structured_dir)


# --------------------------------------------------------------------------- non-finite weights


def test_apply_policy_refuses_nan_weights_and_names_the_tensor():
    model = DigitsMLP()
    with torch.no_grad():
        model.fc2.weight[3, 4] = float("nan")
    with pytest.raises(AutopruneError, match=r"non-finite values .* in 'fc2.weight' \(1 of 8192\)"):
        apply_policy(model, UNSTRUCTURED, example_input=EXAMPLE)


def test_cli_apply_refuses_a_nan_checkpoint(tmp_path, policy_path, capsys):
    from autoprune._weights import save_weights

    state = DigitsMLP().state_dict()
    state["fc1.bias"][0] = float("inf")
    path = tmp_path / "nan.safetensors"
    save_weights(path, state)
    err = _one_line_cli(_apply(policy_path, path, tmp_path / "out"), capsys)
    assert str(path) in err and "'fc1.bias'" in err
    assert not (tmp_path / "out").exists()


def test_export_refuses_nan_weights(tmp_path):
    model = DigitsMLP()
    with torch.no_grad():
        model.fc3.weight.fill_(float("nan"))
    with pytest.raises(AutopruneError, match="'fc3.weight'"):
        export_model(model, EXAMPLE, tmp_path / "e", formats=("torchscript",))
    assert not (tmp_path / "e" / "model.pt").exists()


def test_cli_export_exits_non_zero_when_parity_fails(tmp_path, capsys, monkeypatch):
    import autoprune.export

    directory = tmp_path / "pruned"
    save_pruned(_pruned(), directory, _document())
    real = autoprune.export.to_torchscript

    def broken(model, example_input, path):
        loaded = real(model, example_input, path)
        return lambda x: loaded(x) * float("nan")  # an exported file that computes NaN

    monkeypatch.setattr(autoprune.export, "to_torchscript", broken)
    assert main(["export", str(directory), "--out", str(tmp_path / "e")]) == 2
    captured = capsys.readouterr()
    assert "torchscript" in captured.out  # the table still prints
    assert (
        captured.err.startswith("autoprune: error: torchscript fp32 export")
        and captured.err.count("\n") == 1
    )
    with pytest.raises(AutopruneError, match="differs from PyTorch"):
        export_model(_pruned(), EXAMPLE, tmp_path / "e2", formats=("torchscript",))


# --------------------------------------------------------------------------- load errors


def test_weights_that_do_not_fit_say_why(sparse_dir):
    weights = sparse_dir / "model.safetensors"
    _rewrite(weights, tensors={"fc3.bias": None, "fc3.weight": torch.zeros(11, 64)})
    with pytest.raises(AutopruneError) as info:
        load_pruned(sparse_dir)
    message = str(info.value)
    assert 'Missing key(s) in state_dict: "fc3.bias"' in message
    assert "size mismatch for fc3.weight" in message and "\n" not in message
    _rewrite(weights, tensors={f"extra{i}": torch.zeros(1) for i in range(300)})
    with pytest.raises(AutopruneError, match="Unexpected key") as info:
        load_pruned(sparse_dir)
    assert len(str(info.value)) < 200 + len(str(weights)) + 60


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_a_pickled_checkpoint_is_refused_without_torchs_advice(tmp_path):
    from autoprune._weights import load_weights

    path = tmp_path / "model.pt"
    torch.save(DigitsMLP(), path)  # the whole module, pickled
    with pytest.raises(AutopruneError, match="holds pickled Python objects") as info:
        load_weights(path)
    message = str(info.value)
    assert "weights_only" not in message and "False" not in message and "\n" not in message
    assert "state_dict" in message and "safetensors" in message
    path.write_bytes(pickle.dumps({"w": torch.ones(2)}))
    with pytest.raises(AutopruneError) as info:
        load_weights(path)
    assert "weights_only" not in str(info.value)


def test_a_checkpoint_that_does_not_fit_says_why_in_one_short_line(tmp_path, policy_path, capsys):
    from autoprune._weights import save_weights

    state = DigitsMLP().state_dict()
    del state["fc3.bias"]
    state.update({f"extra{i}": torch.zeros(1) for i in range(300)})
    path = tmp_path / "wrong.safetensors"
    save_weights(path, state)
    err = _one_line_cli(_apply(policy_path, path, tmp_path / "out"), capsys)
    assert f"Checkpoint {path} does not fit the model of task 'digits-mlp': " in err
    assert 'Missing key(s) in state_dict: "fc3.bias"' in err and "Unexpected key(s)" in err
    assert "Error(s) in loading" not in err and err.rstrip().endswith("...")
    reason = err.split("'digits-mlp': ", 1)[1].rstrip("\n")
    assert len(reason) <= 200 and not (tmp_path / "out").exists()
