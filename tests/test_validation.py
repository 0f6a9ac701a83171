"""One validation mechanism: declared constraints, one wording, errors that are ValueErrors."""

from __future__ import annotations

import inspect

import pytest

from autoprune._validation import (
    BOOL,
    Interval,
    Options,
    Rule,
    check_positive_int,
    validate,
    validate_fields,
    validate_params,
)
from autoprune.errors import (
    AutopruneError,
    BudgetError,
    ParameterError,
    PolicyError,
    SearchSpaceError,
    TaskError,
)


def test_project_errors_are_value_errors():
    assert issubclass(AutopruneError, ValueError)
    assert issubclass(ParameterError, AutopruneError)
    with pytest.raises(ValueError, match="'n' parameter"):
        check_positive_int("n", 0)


@pytest.mark.parametrize(
    ("constraint", "value", "expected"),
    [
        (Interval(int, 1, None), 0, "an integer >= 1"),
        (Interval(int, 1, None), True, "an integer >= 1"),
        (Interval(int, 1, 100_000), 2.0, "an integer in [1, 100,000]"),
        (Interval(int, 0, 2**63, closed="left"), 2**63, "an integer in [0, 2**63)"),
        (
            Interval(int, -(2**63), 2**64, closed="left"),
            -1 - 2**63,
            "an integer in [-2**63, 2**64)",
        ),
        (Interval(float, 0, 1, closed="left"), 1.0, "in [0, 1)"),
        (Interval(float, 0, 1, closed="neither"), "x", "a number"),
        (Interval(float, 0, 1), float("nan"), "a finite number"),
        (Interval(float, 0, None), 10**400, "a finite number"),
        (Interval(float, 0, 1, noun="a number"), -1, "a number in [0, 1]"),
        (Interval(float, 0, None), -0.5, ">= 0"),
        (Options(("local", "global")), "x", "one of 'local', 'global'"),
        (Options(("local", "global"), quoted=False), ["x"], "one of local, global"),
        (BOOL, "yes", "true or false"),
        (
            Rule("a non-empty string", lambda v: isinstance(v, str) and bool(v)),
            "",
            "a non-empty string",
        ),
        ([None, Interval(int, 1, 10)], 0, "an integer in [1, 10]"),
        ([Options((-1,)), Interval(int, 1, None)], 0, "one of -1 or an integer >= 1"),
    ],
)
def test_every_constraint_fails_in_the_one_wording(constraint, value, expected):
    with pytest.raises(ParameterError) as info:
        validate("x", value, constraint)
    assert str(info.value).startswith(f"The 'x' parameter must be {expected}. Got ")
    assert str(info.value).endswith(" instead.")


@pytest.mark.parametrize(
    ("constraint", "value"),
    [
        (Interval(int, 1, None), 1),
        (Interval(float, 0, 1, closed="left"), 0),
        (Interval(float, 0, 1, closed="right"), 1.0),
        (Options(("a", "b")), "b"),
        ([None, Interval(int, 1, 10)], None),
        ([Options((-1,)), Interval(int, 1, None)], -1),
        (BOOL, False),
    ],
)
def test_a_good_value_is_returned(constraint, value):
    assert validate("x", value, constraint) is value


def test_the_subject_names_a_parameter_a_file_field_or_a_flag():
    cases = [
        ("parameter", "The 'lr' parameter must be"),
        ("field", "finetune.lr: must be"),
        ("flag", "--lr must be"),
    ]
    for kind, start in cases:
        name = "finetune.lr" if kind == "field" else "lr"
        with pytest.raises(SearchSpaceError) as info:
            validate(name, "x" * 10_000, Interval(float, 0, 1), error=SearchSpaceError, kind=kind)
        message = str(info.value)
        assert message.startswith(start) and len(message) < 300, message


def test_validate_fields_checks_each_declared_field_in_order():
    class Settings:
        epochs, batch_size = -1, 0

    declared = {"batch_size": Interval(int, 1, None), "epochs": Interval(int, 0, None)}
    with pytest.raises(TaskError, match="'batch_size' parameter"):
        validate_fields(Settings(), declared, error=TaskError)


def test_validate_params_checks_before_the_call_and_keeps_the_signature():
    calls = []

    @validate_params({"n": Interval(int, 1, None), "mode": Options(("a", "b"))})
    def run(data, *, n: int = 2, mode: str = "a") -> int:
        """Run it."""
        calls.append((data, n, mode))
        return n

    assert list(inspect.signature(run).parameters) == ["data", "n", "mode"]
    assert run.__doc__ == "Run it." and run([1], n=3) == 3
    with pytest.raises(
        ParameterError, match=r"The 'mode' parameter must be one of 'a', 'b'. Got 'c'"
    ):
        run([1], mode="c")
    with pytest.raises(TypeError):  # a call that does not bind fails as Python says
        run([1], m=1)
    assert calls == [([1], 3, "a")]
    with pytest.raises(TypeError, match="no parameter"):
        validate_params({"missing": BOOL})(run)


def test_budgets_constructed_in_python_are_validated():
    from autoprune.budgets import Budget, parse_budget

    assert parse_budget("params=0.1") == Budget("params", 0.1, relative=True)
    with pytest.raises(BudgetError, match=r"The 'kind' parameter must be one of 'params'"):
        Budget("weight", 0.1, relative=True)
    with pytest.raises(BudgetError, match=r"The 'value' parameter must be > 0. Got -1"):
        Budget("size", -1, relative=False)
    with pytest.raises(BudgetError, match=r"The 'value' parameter must be in \(0, 1\). Got 2"):
        Budget("params", 2, relative=True)


def test_policy_constraints_are_declared_once_and_keep_their_messages():
    from autoprune.policy import FINETUNE_FIELDS, LayerPolicy, Policy

    assert set(FINETUNE_FIELDS) == {
        "epochs",
        "lr",
        "batch_size",
        "recalibrate_bn",
        "distill_weight",
    }
    with pytest.raises(PolicyError, match=r"The 'sparsity' parameter must be in \[0, 1\). Got 1.0"):
        LayerPolicy(sparsity=1.0)
    with pytest.raises(
        PolicyError, match=r"'seed' parameter must be an integer in \[-2\*\*63, 2\*\*63\)"
    ):
        Policy(layers={}, seed=2**63)
    with pytest.raises(PolicyError, match="'granularity' parameter must be one of"):
        Policy.uniform(["fc1"], 0.5, granularity=["unhashable"])


def test_search_space_fields_are_all_declared_and_named_by_their_path():
    from dataclasses import fields

    from autoprune.search._space import SPACE_FIELDS, SearchSpace

    assert set(SPACE_FIELDS) == {f.name for f in fields(SearchSpace)}
    with pytest.raises(SearchSpaceError, match=r"^sensitivity.criterion: must be one of l1, l2"):
        SearchSpace.from_dict({"sensitivity": {"criterion": "psychic"}})
    with pytest.raises(SearchSpaceError, match=r"^nm\[1\]: must be an 'N:M' pattern"):
        SearchSpace.from_dict({"nm": ["2:4", "4:2"]})


def test_command_line_flags_raise_parameter_errors():
    import argparse

    from autoprune.cli._args import check_args

    with pytest.raises(
        ParameterError, match=r"^--trials must be an integer in \[1, 100,000\]. Got 0"
    ):
        check_args(argparse.Namespace(command="search", trials=0))
    with pytest.raises(ParameterError, match=r"^--epochs must be a number in \[0, 1000\]"):
        check_args(argparse.Namespace(command="bench", epochs=-1.0))
    check_args(argparse.Namespace(command="sensitivity", n_jobs=-1, tolerance=0.5))


def test_entry_point_arguments_are_declared(digits_task):
    import torch

    from autoprune.introspect import measure_latency
    from autoprune.sensitivity import SensitivityOptions, analyse_sensitivity

    model = digits_task.new_model()
    with pytest.raises(ParameterError, match="'warmup' parameter must be an integer >= 0"):
        measure_latency(model, torch.zeros(1, 64), warmup=-1)
    assert "repeats" in inspect.signature(measure_latency).parameters
    with pytest.raises(ParameterError, match="'criterion' parameter must be one of 'l1'"):
        analyse_sensitivity(
            model,
            digits_task,
            criterion=["l1"],
            options=SensitivityOptions(cache=False, progress=False),
        )
    with pytest.raises(ParameterError, match="'n_jobs' parameter must be one of -1 or an integer"):
        analyse_sensitivity(
            model, digits_task, options=SensitivityOptions(n_jobs=0, cache=False, progress=False)
        )
