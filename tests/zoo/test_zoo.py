"""The zoo's CI subset: one model of each attention layout and two CNNs, through every step."""

from __future__ import annotations

import pytest
import torch

from benchmarks.zoo import STEPS, ZooModel, huggingface_models, render_markdown, run_model

pytest.importorskip("transformers", reason="the transformers extra is not installed")
pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")

# BERT (output beside the query/key/value module), LLaMA (grouped-query q/k/v/o), GPT-2
# (a fused c_attn converted from Conv1D), DistilBERT (q_lin ... out_lin)
LAYOUTS = ["bert", "llama", "gpt2", "distilbert"]


def _torchvision():
    from benchmarks._torchvision import import_torchvision

    try:
        return import_torchvision()
    except ImportError as exc:
        pytest.skip(str(exc))


@pytest.mark.parametrize("spec", huggingface_models(LAYOUTS), ids=lambda spec: spec.name)
def test_an_attention_layout_goes_through_every_step_with_heads_removed(spec):
    result = run_model(spec, seconds=120)
    assert result.steps == dict.fromkeys(STEPS, "ok"), result.steps
    assert result.units["heads"] >= 4 and result.units["neurons"] >= 128
    assert result.params_after < result.params_before


def test_multihead_attention_of_a_torchvision_vision_transformer_goes_through_every_step():
    models = _torchvision().models

    def build():
        return models.VisionTransformer(
            image_size=32, patch_size=8, num_layers=2, num_heads=4, hidden_dim=32, mlp_dim=64
        ).eval()

    spec = ZooModel("vit-tiny", "torchvision", build, lambda: torch.randn(2, 3, 32, 32))
    result = run_model(spec, seconds=120)
    assert result.steps == dict.fromkeys(STEPS, "ok"), result.steps
    assert result.units == {"heads": 8, "neurons": 128}


@pytest.mark.parametrize("name", ["resnet18", "squeezenet1_1"])
def test_a_torchvision_cnn_goes_through_every_step_with_half_its_channels(name):
    from benchmarks.zoo import torchvision_models

    _torchvision()
    result = run_model(torchvision_models([name])[0], seconds=120)
    assert result.steps == dict.fromkeys(STEPS, "ok"), result.steps
    assert set(result.units) == {"channels"} and result.input_shape == (2, 3, 64, 64)
    assert result.params_after < 0.5 * result.params_before


def test_a_failing_step_is_recorded_with_its_reason_and_the_table_says_so():
    def build():
        return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))

    spec = ZooModel("wrong-input", "test", build, lambda: torch.zeros(2, 5))
    result = run_model(spec, seconds=30)
    assert result.steps["inspect"].startswith("FAIL: RuntimeError") and "units" not in result.steps
    result.commit = "abc1234"
    table = render_markdown([result])
    assert "Commit `abc1234`" in table and "| test | 1 | 0 |" in table
    assert "**wrong-input**: inspect: FAIL: RuntimeError" in table


def test_a_merged_run_keeps_the_other_rows_and_names_each_commit(tmp_path):
    from benchmarks.zoo import ZooResult, read_results, write_results

    old = ZooResult(
        "a", "torchvision", (2, 3, 8, 8), {"channels": 4}, 10, 5, 0.1, 1.0, commit="old"
    )
    old.steps = dict.fromkeys(STEPS, "ok")
    write_results([old], tmp_path)
    (back,) = read_results(tmp_path)
    assert back == old  # a row read back is the result written
    new = ZooResult("b", "huggingface", (2, 16), {"heads": 8}, 20, 9, 0.2, 2.0, commit="new")
    new.steps = {"inspect": "ok", "units": "FAIL: TimeoutError: too slow"}
    write_results([back, new], tmp_path)
    table = (tmp_path / "zoo.md").read_text()
    assert "Commits `old` (1 model), `new` (1 model)" in table
    assert [r.name for r in read_results(tmp_path)] == ["a", "b"]
    assert read_results(tmp_path)[1].steps == new.steps
