"""``autoprune train --policy``: train-time pruning from the command line, written as apply writes."""

from __future__ import annotations

import pytest
import torch

from autoprune.apply import load_pruned
from autoprune.cli import main
from autoprune.policy import Policy
from autoprune.policy_file import PolicyDocument, fingerprint, load_policy, save_policy
from autoprune.tasks.models import DigitsMLP
from autoprune.training import train_with_policy

STRUCTURED = Policy.uniform(["fc1", "fc2"], 0.5, granularity="structured")


@pytest.fixture
def policy_path(tmp_path):
    path = tmp_path / "policy.yaml"
    save_policy(path, PolicyDocument(STRUCTURED, fingerprint=fingerprint(DigitsMLP())))
    return path


def _train(policy_path, out, *extra) -> list[str]:
    return ["train", "--policy", str(policy_path), "--task", "digits-mlp", "--out", str(out)] + [
        "--epochs",
        "1",
        "--quiet",
        *extra,
    ]


def _one_line(argv, capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("autoprune: error:") and err.count("\n") == 1, err
    return err


def test_train_writes_a_model_directory_that_reloads_with_equal_outputs(
    tmp_path, policy_path, digits_task, capsys
):
    out = tmp_path / "pruned"
    assert main(_train(policy_path, out, "--seed", "2", "--lr", "0.002")) == 0
    printed = capsys.readouterr().out
    assert "Trained digits-mlp from scratch" in printed and "17 steps" in printed
    assert "17,226 params before" in printed and "validation accuracy" in printed
    model = load_pruned(out)
    assert (model.fc1.out_features, model.fc2.out_features) == (64, 32)
    expected = train_with_policy(digits_task, STRUCTURED, epochs=1, lr=0.002, seed=2).model
    x = torch.rand(5, 64)
    with torch.no_grad():
        assert torch.equal(model(x), expected(x))  # the same run as the Python API, reloaded
    trained = load_policy(out / "policy.yaml").results["trained"]
    assert trained["from_scratch"] is True and trained["epochs"] == 1 and trained["seed"] == 2
    assert trained["params"] < trained["dense_params"] == 17_226 and trained["lr"] == 0.002


def test_train_refuses_a_foreign_out_and_writes_with_overwrite(tmp_path, policy_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    err = _one_line(_train(policy_path, out), capsys)
    assert str(out) in err and "--overwrite" in err and "notes.txt" in err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert main(_train(policy_path, out, "--overwrite")) == 0
    assert (out / "notes.txt").read_text() == "mine" and (out / "model.safetensors").is_file()
    assert main(_train(policy_path, out, "--overwrite")) == 0  # again into the same directory


@pytest.mark.parametrize(
    ("flags", "phrase"),
    [
        (["--epochs", "0"], "--epochs must be an integer in [1, 10,000]. Got 0 instead."),
        (["--epochs", "5000"], "--epochs must be in (0, 1000]. Got 5000 instead."),
        (["--lr", "2"], "--lr must be in (0, 1). Got 2.0 instead."),
        (["--lr", "nan"], "--lr must be a finite number. Got nan instead."),
        (["--retrain"], "--retrain goes without --policy"),
    ],
)
def test_bad_flags_exit_2_with_one_line_and_write_nothing(
    tmp_path, policy_path, capsys, flags, phrase
):
    out = tmp_path / "out"
    argv = ["train", "--policy", str(policy_path), "--task", "digits-mlp", "--out", str(out)]
    assert phrase in _one_line([*argv, *flags], capsys)
    assert not out.exists()


def test_policy_and_out_go_together(tmp_path, policy_path, capsys):
    no_out = ["train", "--policy", str(policy_path), "--task", "digits-mlp"]
    assert "--policy needs --out DIR" in _one_line(no_out, capsys)
    no_policy = ["train", "--task", "digits-mlp", "--out", str(tmp_path / "o"), "--lr", "0.1"]
    assert "--out and --lr go with --policy" in _one_line(no_policy, capsys)
    assert not (tmp_path / "o").exists()


def test_train_without_policy_still_trains_the_dense_model(capsys):
    assert main(["train", "--task", "digits-mlp", "--epochs", "1", "--quiet"]) == 0
    assert "dense model trained" in capsys.readouterr().out
