"""The production path: apply from the CLI, export with parity checks, loading without the search stack."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from autoprune.apply import apply_policy, load_pruned, save_pruned
from autoprune.cli import main
from autoprune.export import export_model
from autoprune.policy import FinetuneRecipe, Policy
from autoprune.policy_file import PolicyDocument, fingerprint, save_policy
from autoprune.tasks.models import FashionCNN

DIGITS_POLICY = Policy.uniform(["fc1", "fc2"], 0.6, finetune=FinetuneRecipe(epochs=0.5, lr=1e-3))
IMAGE = torch.zeros(1, 1, 28, 28)


@pytest.fixture
def structured_cnn_dir(tmp_path):
    """A structurally pruned FashionCNN saved with its builder and input shape."""
    torch.manual_seed(0)
    policy = Policy.uniform(["conv1", "conv2", "fc1"], 0.5, granularity="structured")
    pruned = apply_policy(FashionCNN(), policy, example_input=IMAGE)
    document = PolicyDocument(
        policy,
        fingerprint=fingerprint(FashionCNN()),
        provenance={"builder": "autoprune.tasks.models:FashionCNN", "input_shape": [1, 1, 28, 28]},
    )
    save_pruned(pruned.model, tmp_path / "pruned", document, history=pruned.history)
    return tmp_path / "pruned", pruned.model


def test_production_loading_needs_neither_optuna_nor_pandas_nor_sklearn(structured_cnn_dir):
    directory, model = structured_cnn_dir
    code = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {{'optuna', 'pandas', 'sklearn'}}:
            raise ImportError('blocked ' + name)
sys.meta_path.insert(0, Block())
import torch
from autoprune.apply import load_pruned
model = load_pruned({str(directory)!r})
x = torch.ones(3, 1, 28, 28)
torch.save(model(x), sys.argv[1])
print(model.conv1.out_channels, model.fc1.in_features)
"""
    out = directory.parent / "out.pt"
    result = subprocess.run(
        [sys.executable, "-c", code, str(out)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["16", str(32 * 49)]
    with torch.no_grad():
        expected = model.eval()(torch.ones(3, 1, 28, 28))
    assert torch.equal(torch.load(out, weights_only=True), expected)


def test_export_torchscript_and_onnx_match_pytorch(structured_cnn_dir, tmp_path):
    directory, _ = structured_cnn_dir
    model = load_pruned(directory)
    rows = export_model(
        model,
        IMAGE,
        tmp_path / "export",
        formats=("torchscript", "onnx"),
        quantize=True,
        metric=lambda run: float(run(torch.zeros(2, 1, 28, 28)).shape[0]),
    )
    by_name = {(r["format"], r["precision"]): r for r in rows}
    assert (
        by_name[("torchscript", "fp32")]["parity"] is True
        and by_name[("onnx", "fp32")]["parity"] is True
    )
    assert (
        by_name[("torchscript", "fp32")]["max_abs_diff"] <= 1e-4
        and by_name[("onnx", "fp32")]["max_abs_diff"] <= 1e-4
    )
    int8 = by_name[("torchscript", "int8-dynamic")]
    assert int8["bytes"] < by_name[("torchscript", "fp32")]["bytes"] and int8["metric"] == 2.0
    import onnxruntime

    session = onnxruntime.InferenceSession(
        by_name[("onnx", "fp32")]["file"], providers=["CPUExecutionProvider"]
    )
    x = torch.randn(5, 1, 28, 28)
    onnx_out = session.run(None, {"input": x.numpy()})[0]  # a batch size other than the traced one
    assert torch.allclose(torch.from_numpy(onnx_out), model(x), atol=1e-4)


def test_cli_apply_is_deterministic_and_loads_back(tmp_path, digits_task, capsys):
    path = tmp_path / "policy.yaml"
    save_policy(
        path, PolicyDocument(DIGITS_POLICY, fingerprint=fingerprint(digits_task.build_model()))
    )
    for name in ("a", "b"):
        assert (
            main(
                [
                    "apply",
                    str(path),
                    "--task",
                    "digits-mlp",
                    "--finetune",
                    "--out",
                    str(tmp_path / name),
                    "--quiet",
                ]
            )
            == 0
        )
    assert "fine-tuned" in capsys.readouterr().out
    model, again = load_pruned(tmp_path / "a"), load_pruned(tmp_path / "b")
    a, b = model.state_dict(), again.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)  # same policy, checkpoint and seed: same weights
    assert float((model.fc1.weight == 0).float().mean()) == pytest.approx(0.6, abs=0.01)


def test_cli_apply_refuses_a_policy_for_another_model_and_writes_nothing(tmp_path, capsys):
    path = tmp_path / "policy.yaml"
    save_policy(
        path, PolicyDocument(Policy.uniform(["fc1"], 0.5), fingerprint=fingerprint(FashionCNN()))
    )
    assert (
        main(
            ["apply", str(path), "--task", "digits-mlp", "--out", str(tmp_path / "out"), "--quiet"]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "layer 'conv1'" in err and "which this model does not have" in err
    assert not (tmp_path / "out").exists()


def test_cli_export_reports_every_variant(structured_cnn_dir, tmp_path, capsys):
    directory, _ = structured_cnn_dir
    assert (
        main(
            [
                "export",
                str(directory),
                "--format",
                "torchscript",
                "--quantize",
                "--out",
                str(tmp_path / "e"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "torchscript  fp32" in out and "int8-dynamic" in out
    assert (tmp_path / "e" / "model.pt").is_file() and (tmp_path / "e" / "model.int8.pt").is_file()


class _Versioned(torch.nn.Module):
    """Like torchvision's MNASNet: refuses a state whose metadata carries no version."""

    _version = 2

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = torch.nn.Linear(4, 8)
        self.fc2 = torch.nn.Linear(8, 2)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, *args, **kwargs):
        if local_metadata.get("version") not in (1, 2):
            raise ValueError(
                f"version should be set to 1 or 2 instead of {local_metadata.get('version')}"
            )
        super()._load_from_state_dict(state_dict, prefix, local_metadata, *args, **kwargs)


def test_a_module_that_reads_its_version_while_loading_reloads(tmp_path):
    torch.manual_seed(0)
    x = torch.randn(3, 4)
    policy = Policy.uniform(["fc1"], 0.5, granularity="structured")
    pruned = apply_policy(_Versioned(), policy, example_input=x)
    out = save_pruned(pruned.model, tmp_path / "pruned", policy, history=pruned.history)
    loaded = load_pruned(out, build_model=_Versioned, example_input=x)
    assert loaded.fc1.out_features == 4
    assert torch.equal(loaded(x), pruned.model(x))
