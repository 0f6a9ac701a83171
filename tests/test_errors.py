"""A hostile or careless user: every mistake ends in one line, before any work, with a short message.

Each test drives the command line (``autoprune.cli.main``) or the loader a
command uses, with a small task file written into ``tmp_path`` when a custom
model or data set is needed. Where a check must come before the work, the work
itself (``dense_model``, ``search``) is replaced by a function that fails the
test if it is ever reached.
"""

from __future__ import annotations

import contextlib
import errno
import io
import textwrap

import pytest
import torch

from autoprune.errors import AutopruneError, PolicyError, SearchSpaceError, TaskError

MAX_MESSAGE = 1000  # characters of any one error message, whatever the input


def run_cli(argv: list[str]) -> tuple[int, str]:
    from autoprune.cli import main

    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        status = main([str(a) for a in argv])
    return status, stderr.getvalue()


def expect_one_line(argv: list[str], *phrases: str) -> str:
    """The command exits 2 with one short ``autoprune: error:`` line holding every phrase."""
    status, stderr = run_cli(argv)
    assert status == 2, stderr
    assert stderr.startswith("autoprune: error: ") and stderr.count("\n") == 1, stderr[:2000]
    assert len(stderr) <= MAX_MESSAGE, f"{len(stderr)} characters: {stderr[:300]}..."
    for phrase in phrases:
        assert phrase in stderr, stderr
    return stderr


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if a command gets as far as building a model (the start of all its work)."""
    from autoprune.tasks import Task

    def refuse(*args, **kwargs):
        raise AssertionError("the command started working before checking its arguments")

    monkeypatch.setattr(Task, "new_model", refuse)


@pytest.fixture
def own_cache(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("AUTOPRUNE_CACHE_DIR", str(cache))
    return cache


# --------------------------------------------------------------------------- item 8: YAML bombs, echoes

ALIAS_POLICY = """\
schema_version: 1
policy:
  layers:
    fc1: {sparsity: 0.5}
provenance:
  a: &a [1, 2, 3]
  b: *a
"""


def _alias_bomb(levels: int, width: int = 10) -> str:
    lines = ["a0: &a0 [" + ", ".join(["xxxxxxxx"] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def test_policy_file_with_aliases_is_refused(tmp_path):
    from autoprune.policy_file import load_policy

    path = tmp_path / "policy.yaml"
    path.write_text(ALIAS_POLICY)
    with pytest.raises(PolicyError, match=r"line 6, column 6: anchors and aliases .* not allowed"):
        load_policy(path)


def test_alias_bomb_search_space_gives_a_short_error_at_once(tmp_path, no_work):
    # 10**4 leaves of 8 characters: its repr alone would make a 120 kB error line
    path = tmp_path / "space.yaml"
    path.write_text(_alias_bomb(4) + "sparsity: {low: *a3}\n")
    expect_one_line(  # refused by the loader at its first alias: nothing is expanded
        ["search", "--task", "digits-mlp", "--budget", "params=0.3", "--space", path],
        "anchors and aliases",
    )


@pytest.mark.parametrize(
    "text, name",
    [
        (
            "policy:\n  layers:\n    fc1: {sparsity: 0.5}\n    fc1: {sparsity: 0.9}\nschema_version: 1\n",
            "fc1",
        ),
        (
            "schema_version: 1\npolicy: {layers: {fc1: {sparsity: 0.5}}}\nschema_version: 1\n",
            "schema_version",
        ),
    ],
)
def test_a_key_given_twice_in_a_policy_is_refused(tmp_path, text, name):
    from autoprune.policy_file import load_policy

    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError, match=f"the key '{name}' is given twice"):
        load_policy(path)


def test_a_key_given_twice_in_a_json_policy_is_refused(tmp_path):
    from autoprune.policy_file import load_policy

    path = tmp_path / "policy.json"
    path.write_text(
        '{"schema_version": 1, "policy": {"layers": {"fc1": {"sparsity": 0.5}, "fc1": {"sparsity": 0.9}}}}'
    )
    with pytest.raises(PolicyError, match="the key 'fc1' is given twice"):
        load_policy(path)


def test_a_key_given_twice_in_a_search_space_is_refused(tmp_path, no_work):
    path = tmp_path / "space.yaml"
    path.write_text("sparsity:\n  layers: {fc1: [0, 0.5]}\n  layers: {fc2: [0, 0.5]}\n")
    expect_one_line(
        ["search", "--task", "digits-mlp", "--budget", "params=0.3", "--space", path],
        "line 3, column 3: the key 'layers' is given twice",
    )


def test_files_over_the_size_cap_are_refused_before_parsing(tmp_path):
    from autoprune._yaml import MAX_BYTES
    from autoprune.search import load_space

    path = tmp_path / "huge.yaml"
    with path.open("wb") as handle:
        handle.truncate(MAX_BYTES + 1)
    with pytest.raises(
        SearchSpaceError, match=f"is {MAX_BYTES + 1:,} bytes; autoprune reads files of at most"
    ):
        load_space(path)


HUGE = "x" * 100_000


@pytest.mark.parametrize(
    "load",
    [
        lambda: __import__("autoprune.search", fromlist=["x"]).SearchSpace.from_dict(
            {"name": [HUGE]}
        ),
        lambda: __import__("autoprune.search", fromlist=["x"]).SearchSpace.from_dict({HUGE: 1}),
        lambda: __import__("autoprune.search", fromlist=["x"]).SearchSpace.from_dict(
            {"sparsity": {"layers": {"fc1": list(range(100_000))}}}
        ),
        lambda: __import__("autoprune.policy", fromlist=["x"]).Policy.from_dict(
            {"layers": {"fc1": {"sparsity": 0.5}}, HUGE: 1}
        ),
        lambda: __import__("autoprune.policy", fromlist=["x"]).Policy.from_dict(
            {"layers": {"fc1": {"sparsity": 0.5, "nm": HUGE, "granularity": "nm"}}}
        ),
        lambda: __import__("autoprune.policy", fromlist=["x"]).Policy.from_dict(
            {"layers": {"fc1": [HUGE]}}
        ),
        lambda: __import__("autoprune.policy", fromlist=["x"]).Policy.from_dict(
            {"layers": {"fc1": {"sparsity": 0.5}}, "seed": 10**5000}
        ),
        lambda: __import__("autoprune.budgets", fromlist=["x"]).parse_budget("params=" + HUGE),
        lambda: __import__("autoprune.budgets", fromlist=["x"]).parse_budgets([[HUGE] * 1000]),
        lambda: __import__("autoprune.tasks", fromlist=["x"]).get_task("nope" + HUGE),
        lambda: __import__("autoprune._validation", fromlist=["x"]).check_choice(
            "scope", {"a": [HUGE] * 10}, ("local",)
        ),
    ],
)
def test_every_echoed_value_is_cut_to_200_characters(load):
    with pytest.raises(AutopruneError) as info:
        load()
    message = str(info.value)
    assert "\n" not in message and len(message) <= 600, f"{len(message)} characters"


def test_provenance_is_checked_as_small_plain_data():
    from autoprune.policy import check_provenance

    fine = {"task": "digits-mlp", "task_options": {"split_seed": 1}, "budget": ["params=0.1"]}
    assert check_provenance(fine) == fine
    for wrong, phrase in [
        ({"a": list(range(300))}, "too large"),
        ({"a": {"b": {"c": {"d": 1}}}}, "nested too deeply"),
        ({"a": "x" * 5000}, "5,000 characters"),
        ({"a": b"bytes"}, "must be plain data"),
        ({1: "x"}, "keys must be printable text"),
        (["x"], "must be a mapping"),
    ]:
        with pytest.raises(PolicyError, match=phrase):
            check_provenance(wrong, source="p.yaml")


# --------------------------------------------------------------------------- item 10: upper bounds


@pytest.mark.parametrize(
    "section, field, value",
    [
        ("schedule", "rounds", 100_000),
        ("schedule", "every", 10**7),
        (None, "min_kept", 10**7),
        (None, "round_to", 10**5),
        ("finetune", "batch_size", 10**7),
        ("finetune", "epochs", 10**5),
    ],
)
def test_policy_settings_have_upper_bounds(section, field, value):
    from autoprune.policy import Policy

    data = {"layers": {"fc1": {"sparsity": 0.5}}}
    if section:
        data[section] = {field: value}
    else:
        data[field] = value
    with pytest.raises(PolicyError, match=f"'{field}' parameter must be .*in \\[.*Got {value}"):
        Policy.from_dict(data)


def test_a_policy_with_100000_rounds_is_refused_at_once(tmp_path, no_work):
    path = tmp_path / "policy.yaml"
    path.write_text(
        "schema_version: 1\npolicy:\n  layers: {fc1: {sparsity: 0.5}}\n"
        "  schedule: {name: iterative, rounds: 100000}\n"
    )
    expect_one_line(
        ["apply", path, "--task", "digits-mlp", "--out", tmp_path / "out"], "'rounds'", "[1, 100]"
    )


@pytest.mark.parametrize(
    "data, where",
    [
        ({"finetune": {"iterative_rounds": 100_000}}, "finetune.iterative_rounds"),
        ({"finetune": {"gradual_every": 10**7}}, "finetune.gradual_every"),
        ({"tiers": 10**6}, "tiers"),
        ({"evolution": {"parents": 10**6}}, "evolution.parents"),
        ({"sensitivity": {"val_items": 10**9}}, "sensitivity.val_items"),
    ],
)
def test_search_space_fields_have_upper_bounds(data, where):
    from autoprune.search import SearchSpace

    with pytest.raises(SearchSpaceError, match=f"^{where}: must be an integer in"):
        SearchSpace.from_dict(data)


def test_task_settings_have_upper_bounds():
    from autoprune.tasks import get_task

    base = get_task("digits-mlp")
    import dataclasses

    for field, value in [
        ("epochs", 10**6),
        ("batch_size", 10**7),
        ("lr", 5.0),
        ("weight_decay", -1.0),
    ]:
        with pytest.raises(TaskError, match=f"'{field}' parameter must be"):
            dataclasses.replace(base, **{field: value})


# --------------------------------------------------------------------------- item 12: validated up front


def test_train_with_negative_epochs_is_refused_and_caches_nothing(own_cache):
    expect_one_line(["train", "--task", "digits-mlp", "--epochs", "-1"], "--epochs must be")
    assert not any(own_cache.rglob("*.safetensors"))


def test_demo_with_zero_trials_is_refused(monkeypatch):
    seen = []
    monkeypatch.setattr(
        "autoprune.cli._search.cmd_search",
        lambda args: seen.append((args.trials, args.budget, args.space)) or 0,
    )
    expect_one_line(["demo", "--trials", "0"], "--trials must be an integer in [1, ")
    assert seen == []
    status, _ = run_cli(["demo", "--trials", "3"])
    assert status == 0 and seen == [(3, ["size=0.25", "latency=0.6"], "structured")]


def test_top_zero_is_refused_before_the_search(tmp_path, no_work):
    expect_one_line(
        [
            "search",
            "--task",
            "digits-mlp",
            "--budget",
            "params=0.3",
            "--top",
            "0",
            "--out",
            tmp_path / "r",
        ],
        "--top must be an integer in [1, ",
    )


def test_negative_sensitivity_tolerance_is_refused_before_the_analysis(tmp_path, no_work):
    expect_one_line(
        ["sensitivity", "--task", "digits-mlp", "--tolerance", "-1", "--out", tmp_path / "s"],
        "--tolerance must be a number in [0, 1]",
    )


@pytest.mark.parametrize("name", ["../../evil", "a/b", "..", ".hidden", "", "x" * 101, "a b"])
def test_task_names_are_safe_file_names(name):
    import dataclasses

    from autoprune.tasks import get_task

    with pytest.raises(TaskError, match="The 'name' field must be 1-100 letters"):
        dataclasses.replace(get_task("digits-mlp"), name=name)


def test_task_file_with_a_path_in_its_name_writes_nothing_outside(tmp_path, own_cache):
    path = _task_file(tmp_path)
    expect_one_line(["train", "--task", f"{path}:evil_name"], "The 'name' field must be")
    assert not (tmp_path / "evil-seed0.json").exists() and not any(tmp_path.rglob("*.safetensors"))


# --------------------------------------------------------------------------- item 13: one line, not a traceback

TASK_FILE = """
import torch, autoprune
from torch import nn
from autoprune.tasks.digits import load_digits_tensors

X, Y = load_digits_tensors()
X, Y = X[:300], Y[:300]


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 16)
        self.fc2 = nn.Linear(16, 10)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


class TrainModeFails(MLP):
    def forward(self, x):
        if self.training:
            raise ValueError("only in train mode")
        return super().forward(x)


class NoPrunable(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(64, 10) * 0.1)

    def forward(self, x):
        return x @ self.w


def make(x=X, y=Y, model=MLP, name="t", **settings):
    settings.setdefault("epochs", 1)
    return autoprune.Task(
        name=name, build_model=model, train_data=(x[:200], y[:200]), val_data=(x[200:250], y[200:250]),
        test_data=(x[250:], y[250:]), example_input=torch.zeros(1, 64), **settings
    )


def nan_data():
    x = X.clone()
    x[3, 5] = float("nan")
    return make(x=x)


def nan_loss():
    return make(loss=lambda o, t: o.sum() * float("nan"))


calls = []


def late_nan_loss(outputs, targets):
    calls.append(1)
    loss = nn.functional.cross_entropy(outputs, targets)
    return loss * float("nan") if len(calls) > 2 else loss


def diverging():
    return make(loss=late_nan_loss)


def label_out_of_range():
    y = Y.clone()
    y[7] = 12
    return make(y=y)


def float_labels():
    return make(y=Y.float())


def wrong_features():
    return autoprune.Task(
        name="t", build_model=MLP, train_data=(X[:200, :60], Y[:200]), val_data=(X[200:250, :60], Y[200:250]),
        test_data=(X[250:, :60], Y[250:]), example_input=torch.zeros(1, 64), epochs=1,
    )


def train_mode_fails():
    return make(model=TrainModeFails)


def metric_raises():
    def broken(outputs, targets):
        raise ZeroDivisionError("boom")

    return make(metric=broken)


def metric_text():
    def wordy(outputs, targets):
        return "high"

    return make(metric=wordy)


def no_prunable():
    return make(model=NoPrunable)


def plain():
    return make()


def evil_name():
    return make(name="../evil")
"""


def _task_file(tmp_path):
    path = tmp_path / "tasks.py"
    if not path.exists():
        path.write_text(textwrap.dedent(TASK_FILE))
    return path


@pytest.mark.parametrize(
    "function, phrases",
    [
        ("nan_data", ["train_data of task 't' holds NaN or infinite values in its inputs (item 3"]),
        ("nan_loss", ["loss of task 't' is nan on the first batch"]),
        ("diverging", ["Training task 't' diverged: the loss became nan"]),
        ("label_out_of_range", ["class indices in [0, 9]", "item 7 has label 12"]),
        (
            "float_labels",
            ["are float32, but its loss (CrossEntropyLoss) needs integer class indices"],
        ),
        (
            "wrong_features",
            [
                "first batch of its train_data (inputs of shape (16, 60)",
                "example_input has shape (1, 64)",
            ],
        ),
        ("train_mode_fails", ["fails in training mode", "ValueError: only in train mode"]),
        ("metric_raises", ["metric 'broken' raised ZeroDivisionError: boom"]),
        ("metric_text", ["metric 'wordy' must return a number", "str 'high'"]),
        ("no_prunable", ["has no prunable layer"]),
    ],
)
def test_task_mistakes_are_one_line(tmp_path, own_cache, function, phrases):
    expect_one_line(["train", "--task", f"{_task_file(tmp_path)}:{function}", "--quiet"], *phrases)
    assert not any(own_cache.rglob("*.safetensors")), "a broken task left a cached model"


@pytest.mark.parametrize(
    "command",
    [
        ["inspect", "--repeats", "1", "--warmup", "0"],
        ["sensitivity", "--quiet"],
        ["search", "--budget", "params=0.3", "--space", "quick", "--trials", "1", "--quiet"],
    ],
)
def test_a_model_without_prunable_layers_is_one_line_in_every_command(tmp_path, own_cache, command):
    argv = [command[0], "--task", f"{_task_file(tmp_path)}:no_prunable", *command[1:]]
    if command[0] != "inspect":
        argv += ["--out", tmp_path / "out"]
    expect_one_line(argv, "has no prunable layer (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)")


def test_an_out_that_is_a_file_is_refused_before_the_work(tmp_path, no_work):
    afile = tmp_path / "afile"
    afile.write_text("x")
    expect_one_line(
        ["sensitivity", "--task", "digits-mlp", "--out", afile], "is a file, not a directory"
    )
    expect_one_line(
        ["search", "--task", "digits-mlp", "--budget", "params=0.3", "--out", afile / "run"],
        "cannot be created",
        "is a file, not a directory",
    )


def test_a_read_only_out_is_refused_before_the_work(tmp_path, monkeypatch, no_work):
    import os

    real_access = os.access
    monkeypatch.setattr(
        "autoprune.cli._args.os.access",
        lambda path, mode: False if str(path) == str(tmp_path) else real_access(path, mode),
    )
    expect_one_line(
        ["sensitivity", "--task", "digits-mlp", "--out", tmp_path / "s"], "is read-only"
    )


@pytest.mark.parametrize(
    "code, phrases",
    [
        (errno.ENOSPC, ["No space left on device [ENOSPC]", "the disk is full"]),
        (errno.EROFS, ["Read-only file system [EROFS]", "write elsewhere"]),
        (errno.ENOTDIR, ["Not a directory [ENOTDIR]", "a file stands where a directory is needed"]),
    ],
)
def test_write_failures_are_one_line_naming_the_path(
    tmp_path, own_cache, monkeypatch, code, phrases
):
    def fail(path, *args, **kwargs):
        raise OSError(code, __import__("os").strerror(code), str(path))

    monkeypatch.setattr("autoprune.training._dense.save_weights", fail)
    message = expect_one_line(
        ["train", "--task", f"{_task_file(tmp_path)}:plain", "--quiet"], *phrases
    )
    assert str(own_cache) in message


def test_a_bug_is_not_hidden_as_a_file_system_error(tmp_path, own_cache, monkeypatch):
    monkeypatch.setattr(
        "autoprune.training._dense.save_weights",
        lambda *a, **k: (_ for _ in ()).throw(KeyError("bug")),
    )
    with pytest.raises(KeyError):
        run_cli(["train", "--task", f"{_task_file(tmp_path)}:plain", "--quiet"])


@pytest.mark.parametrize("seed", ["99999999999999999999999", "-1"])
def test_a_huge_or_negative_seed_is_one_line(seed, no_work):
    expect_one_line(
        ["train", "--task", "digits-mlp", "--seed", seed], "--seed must be an integer in [0, "
    )


@pytest.mark.parametrize(
    "option, phrase",
    [
        (
            "split_seed=[1,2]",
            "The task option 'split_seed' of task 'digits-mlp' must be an integer",
        ),
        ("split_seed=99999999999999999999999", "must be an integer in [0, 2**63)"),
        ("split_seed=true", "must be an integer"),
        ("colour=red", "does not accept the option(s) ['colour']; it accepts split_seed"),
        ("split_seed=[1,", "--task-option split_seed: the value '[1,' cannot be read"),
        ("=3", "--task-option must look like KEY=VALUE"),
    ],
)
def test_task_options_of_the_wrong_type_are_one_line(option, phrase, no_work):
    expect_one_line(["train", "--task", "digits-mlp", "--task-option", option], phrase)


def test_a_huge_seed_is_refused_by_the_python_api_too():
    from autoprune.tasks import get_task
    from autoprune.training import dense_model

    with pytest.raises(TaskError, match="'seed' parameter must be an integer in"):
        dense_model(get_task("digits-mlp"), seed=10**30, progress=False)


def test_the_data_check_leaves_the_model_and_the_random_state_alone():
    from autoprune.tasks import get_task

    task = get_task("digits-mlp")
    torch.manual_seed(0)
    model = task.new_model()
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    task.check_data(model)
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert torch.equal(rng, torch.get_rng_state())


# --------------------------------------------------------------------------- item 14: YAML numbers, odd paths


def test_exponent_numbers_without_a_dot_are_numbers(tmp_path):
    from autoprune.policy_file import load_policy
    from autoprune.search import load_space

    space = tmp_path / "space.yaml"
    space.write_text("finetune: {lr: 1e-3}\nlevels: [1, 5E-1]\n")
    loaded = load_space(space)
    assert loaded.finetune.lr == (1e-3, 1e-3) and loaded.levels == (1.0, 0.5)
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "schema_version: 1\npolicy:\n  layers: {fc1: {sparsity: 5e-1}}\n  finetune: {lr: 2e-4}\n"
    )
    document = load_policy(policy)
    assert document.policy.finetune.lr == 2e-4 and document.policy.layers["fc1"].sparsity == 0.5


@pytest.mark.parametrize(
    "make, phrase",
    [
        (lambda tmp: tmp, "is a directory"),
        (lambda tmp: "/dev/null", "is not a regular file (a device, pipe or socket)"),
        (lambda tmp: tmp / "missing.yaml", "does not exist"),
    ],
)
def test_a_directory_or_device_is_named_as_such(tmp_path, no_work, make, phrase):
    import re

    from autoprune._io import read_data_file

    path = make(tmp_path)
    with pytest.raises(PolicyError, match=re.escape(f"Policy file {path} {phrase}")):
        read_data_file(path, error=PolicyError, what="Policy file")
    expect_one_line(
        ["search", "--task", "digits-mlp", "--budget", "params=0.3", "--space", path],
        f"Search space file {path}",
        phrase,
    )
