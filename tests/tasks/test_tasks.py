from __future__ import annotations

import gzip

import pytest
import torch

import autoprune
from autoprune.errors import DataError, TaskError
from autoprune.tasks import available_tasks, fashion, get_task

USER_TASK_FILE = """
import torch, autoprune
from torch import nn

class MyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 16)
        self.fc2 = nn.Linear(16, 3)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))

g = torch.Generator().manual_seed(0)
X = torch.randn(300, 6, generator=g)
y = (X[:, 0] > 0).long() + (X[:, 1] > 0.5).long()
X_train, y_train = X[:200], y[:200]
X_val, y_val = X[200:250], y[200:250]
X_test, y_test = X[250:], y[250:]

def task():
    return autoprune.Task(
        name="my-task",
        build_model=lambda: MyNet(),          # a fresh, untrained nn.Module
        train_data=(X_train, y_train),        # tensors, or a torch Dataset
        val_data=(X_val, y_val),
        test_data=(X_test, y_test),
        metric="accuracy",                    # higher is better
        example_input=torch.randn(1, *X_train.shape[1:]),
    )

def not_a_task():
    return 42

def broken():
    return autoprune.Task(
        name="broken", build_model=lambda: MyNet(),
        train_data=(X_train, y_train), test_data=(X_test, y_test),
        example_input=torch.randn(1, 5),
    )
"""


@pytest.fixture
def task_file(tmp_path):
    path = tmp_path / "my_task.py"
    path.write_text(USER_TASK_FILE)
    return path


def test_builtin_tasks_are_listed():
    assert set(available_tasks()) >= {"fashion-cnn", "fashion-resnet", "digits-mlp"}


def test_unknown_task_lists_the_available_ones():
    with pytest.raises(
        TaskError, match="Unknown task 'nope'.*digits-mlp, fashion-cnn, fashion-resnet"
    ):
        get_task("nope")


def test_digits_splits_are_disjoint_seeded_and_complete(digits_task):
    sizes = [len(digits_task.train_data), len(digits_task.val_data), len(digits_task.test_data)]
    assert sizes == [1077, 360, 360]
    rows = [
        {tuple(x.tolist()) for x, _ in split}
        for split in (digits_task.train_data, digits_task.val_data, digits_task.test_data)
    ]
    # digits has a few exact duplicate images; disjointness is about items, so allow at most those
    assert len(rows[0] & rows[2]) <= 3 and len(rows[1] & rows[2]) <= 3
    again = get_task("digits-mlp")
    assert torch.equal(again.test_data.tensors[0], digits_task.test_data.tensors[0])
    other = get_task("digits-mlp", split_seed=5)
    assert not torch.equal(other.test_data.tensors[0], digits_task.test_data.tensors[0])


def test_fashion_task_has_55k_5k_10k_normalised_splits():
    task = get_task("fashion-cnn")
    assert (len(task.train_data), len(task.val_data), len(task.test_data)) == (55000, 5000, 10000)
    x, y = task.train_data.tensors
    assert x.shape[1:] == (1, 28, 28) and x.dtype == torch.float32
    assert abs(float(x.mean())) < 0.05 and abs(float(x.std()) - 1.0) < 0.05
    assert sorted(torch.unique(y).tolist()) == list(range(10))
    assert task.spec == "fashion-cnn"


def test_fashion_subsets_are_seeded():
    a = get_task("fashion-cnn", train_size=500, test_size=200)
    b = get_task("fashion-cnn", train_size=500, test_size=200)
    assert len(a.train_data) == 500 and len(a.test_data) == 200
    assert torch.equal(a.train_data.tensors[1], b.train_data.tensors[1])
    assert a.spec_options == {"train_size": 500, "test_size": 200}


def test_missing_fashion_files_say_where_and_how(tmp_path, monkeypatch):
    monkeypatch.setenv(fashion.ENV_VAR, str(tmp_path))
    monkeypatch.setattr(fashion, "DEBIAN_DIR", tmp_path / "nowhere")
    fashion.load_fashion_mnist.cache_clear()
    try:
        with pytest.raises(DataError) as info:
            get_task("fashion-cnn")
    finally:
        fashion.load_fashion_mnist.cache_clear()
    message = str(info.value)
    assert str(tmp_path) in message and "apt-get install dataset-fashion-mnist" in message


def test_truncated_idx_file_is_refused(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    with gzip.open(path, "wb") as f:
        f.write(b"\x00\x00\x08\x01" + (100).to_bytes(4, "big") + bytes(10))
    with pytest.raises(DataError, match="truncated"):
        fashion.read_idx(path)


def test_user_task_file_of_the_documented_form(task_file):
    task = get_task(f"{task_file}:task")
    assert isinstance(task, autoprune.Task)
    assert task.name == "my-task" and len(task.train_data) == 200 and len(task.val_data) == 50
    assert task.new_model()(task.example_input).shape == (1, 3)
    assert task.spec == f"{task_file}:task"


@pytest.mark.parametrize(
    ("suffix", "pattern"),
    [
        ("", "malformed"),
        (":missing", "has no function 'missing'"),
        (":not_a_task", "must return an autoprune.Task. Got int"),
    ],
)
def test_bad_task_file_specs(task_file, suffix, pattern):
    spec = str(task_file) if suffix == "" else f"{task_file}{suffix}"
    with pytest.raises(TaskError, match=pattern):
        get_task(spec)


def test_missing_task_file(tmp_path):
    with pytest.raises(TaskError, match="does not exist"):
        get_task(f"{tmp_path}/nope.py:task")


def test_example_input_that_does_not_run(task_file):
    task = get_task(f"{task_file}:broken")
    with pytest.raises(TaskError, match=r"does not run on its example_input of shape \(1, 5\)"):
        task.new_model()


def test_task_fields_are_validated():
    X, y = torch.randn(10, 2), torch.zeros(10, dtype=torch.long)
    with pytest.raises(TaskError, match="'train_data' field has 10 inputs but 3 targets"):
        autoprune.Task(
            name="t",
            build_model=lambda: torch.nn.Linear(2, 2),
            train_data=(X, y[:3]),
            test_data=(X, y),
        )
    with pytest.raises(TaskError, match="'metric' field"):
        autoprune.Task(
            name="t",
            build_model=lambda: torch.nn.Linear(2, 2),
            train_data=(X, y),
            test_data=(X, y),
            metric="f1",
        )
    with pytest.raises(TaskError, match="'build_model' field"):
        autoprune.Task(
            name="t", build_model=torch.nn.Linear(2, 2).weight, train_data=(X, y), test_data=(X, y)
        )


def test_validation_split_is_carved_when_missing():
    X, y = torch.randn(100, 2), torch.zeros(100, dtype=torch.long)
    task = autoprune.Task(
        name="t",
        build_model=lambda: torch.nn.Linear(2, 2),
        train_data=(X, y),
        test_data=(X, y),
        val_fraction=0.2,
    )
    assert (len(task.train_data), len(task.val_data)) == (80, 20)
    assert task.example_input.shape == (1, 2)


def test_task_file_runs_from_the_cli(task_file, capsys):
    from autoprune.cli import main

    assert main(["train", "--task", f"{task_file}:task", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "Task my-task" in out and "test accuracy" in out
    assert main(["inspect", "--task", f"{task_file}:task", "--repeats", "3", "--warmup", "1"]) == 0
    out = capsys.readouterr().out
    assert "fc1" in out and "Parameters:   163" in out


def test_cli_errors_are_one_line(task_file, capsys):
    from autoprune.cli import main

    assert main(["inspect", "--task", "nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("autoprune: error: Unknown task 'nope'")
    assert main(["train", "--task", f"{task_file}:broken"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "example_input" in err[0]
    assert "Traceback" not in "\n".join(err)
