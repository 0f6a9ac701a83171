"""Bad input, systematically: property-based tests over the three loaders at the edge.

Every malformed policy document, search space or budget must end in the
project's own error (:class:`PolicyError`, :class:`SearchSpaceError`,
:class:`BudgetError`) with a one-line message, never another exception; an
input that happens to be valid must load into an object that round-trips.
Loaders never modify their input, and a refused policy leaves no trace: the
CLI writes no output directory and ``apply_policy`` leaves the model as it was.

Inputs are mutations of valid documents (a value at a random path replaced by
one of the wrong type or range, a key deleted, an unknown key added), random
text, random bytes and truncated files, and hostile ones: anchors and aliases
(up to "billion laughs" bombs), a key given twice, oversized values (long
strings and lists, deep nesting, huge integers) and files over the size cap.
Every error message is one line of at most :data:`MAX_MESSAGE` characters.
Runs are derandomized (reproducible); set ``AUTOPRUNE_FUZZ_RANDOM=1`` for fresh
examples and ``AUTOPRUNE_FUZZ_SCALE=10`` for ten times as many. The last test
checks every loader saw malformed input; with ``AUTOPRUNE_FUZZ_COUNTS=PATH`` it
writes how many inputs each saw to PATH as JSON (e.g.
``results/reliability/fuzz_counts.json``; a plain test run writes nothing); it
relies on pytest running this file's tests in order.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import os
from collections import Counter
from pathlib import Path

import pytest
import torch
import yaml
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from autoprune.budgets import KINDS, Budget, parse_budget, parse_budgets
from autoprune.errors import (
    AutopruneError,
    BudgetError,
    PolicyError,
    PruningError,
    SearchSpaceError,
)
from autoprune.policy import LayerPolicy, Policy
from autoprune.policy_file import PolicyDocument, load_policy, parse_policy_document, save_policy
from autoprune.search import SearchSpace, load_space

SCALE = float(os.environ.get("AUTOPRUNE_FUZZ_SCALE", "1"))
MAX_MESSAGE = 1000  # characters of any error message, however large the input
COUNTS: dict[str, Counter] = {}


def fuzz_settings(max_examples: int):
    """Shared settings: no example database (no stray files), reproducible unless asked otherwise."""
    return settings(
        max_examples=max(1, int(max_examples * SCALE)),
        deadline=None,
        database=None,
        derandomize=not os.environ.get("AUTOPRUNE_FUZZ_RANDOM"),
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
        ],
    )


def count(loader: str, outcome: str) -> None:
    COUNTS.setdefault(loader, Counter())["generated"] += 1
    COUNTS[loader][outcome] += 1


def expect_clean_error(exc: BaseException, error: type[AutopruneError]) -> None:
    """The project's error type, with a non-empty message on one line."""
    assert isinstance(exc, error), f"{type(exc).__name__} instead of {error.__name__}: {exc}"
    message = str(exc)
    assert message.strip(), "an error without a message"
    assert "\n" not in message, f"a multi-line message: {message!r}"
    assert len(message) <= MAX_MESSAGE, f"a message of {len(message):,} characters: {message[:300]}"


# --------------------------------------------------------------------------- valid documents

POLICY_BASES = [
    PolicyDocument(Policy.uniform(["fc1", "fc2"], 0.5)).to_dict(),
    PolicyDocument(
        Policy.uniform(["fc1", "fc2"], 0.25, granularity="structured", criterion="l2", seed=3),
        fingerprint={"fc1": [128, 64], "fc2": [64, 128]},
        provenance={"task": "digits-mlp", "threads": 1},
        results={"val_metric": 0.9},
    ).to_dict(),
    PolicyDocument(Policy.uniform(["fc1"], 0.0, granularity="nm", nm="2:4", round_to=8)).to_dict(),
    PolicyDocument(
        Policy.global_ranking(["fc1", "fc2", "fc3"], 0.6, max_sparsity={"fc3": 0.3}, min_kept=2)
    ).to_dict(),
    Policy.uniform(["fc1", "fc2"], 0.7).to_dict(),  # schema 0: a bare policy
]
SPACE_BASES = [
    load_space(name).to_dict() for name in ("default", "quick", "structured", "unstructured")
] + [{}]
BUDGET_BASES = [
    "params=0.1",
    "size=0.4MB",
    "latency=5ms",
    "macs=2M",
    "params=10%",
    "latency=0.5x",
    "size=1MiB",
    "params=42000",
    "macs=1.5G",
    "latency=5.5 ms",
    "size=400KB",
    "macs=2e6",
]

# --------------------------------------------------------------------------- wrong values

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.integers(-(10**30), 10**30),
    st.sampled_from([10**400, -(10**400), 2**63, 2**64, -1, 0]),
    st.floats(),  # NaN and infinities included
    st.sampled_from(
        [0.0, -0.0, 0.5, 0.999, 1.0, 1.5, -0.5, 1e-9, 1e-320, 1e308, math.nan, math.inf, -math.inf]
    ),
    st.text(max_size=12),
    st.sampled_from(
        [
            "",
            "l1",
            "magnitude",
            "2:4",
            "0:0",
            "4:2",
            "a:b",
            "2:4:8",
            "global",
            "structured",
            "nm",
            "1e400",
            "yes",
            "~",
            "0.5",
            "one-shot",
            "default",
        ]
    ),
)
WRONG_VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
ODD_KEYS = st.one_of(
    st.text(max_size=10),
    st.sampled_from(
        ["extra", "sparsity", "seed", "layers", "policy", "schema_version", "low", "lr", "enabled"]
    ),
    st.integers(-2, 2),
    st.none(),
    st.booleans(),
    st.floats(allow_nan=False),
)


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, prefix + (index,))


def _at(doc, path):
    for key in path:
        doc = doc[key]
    return doc


@st.composite
def mutations(draw, bases):
    """A valid document with 1-3 mutations: replace a value, delete a key, add an unknown key."""
    doc = copy.deepcopy(draw(st.sampled_from(bases)))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(_paths(doc))))
        operation = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        target = _at(doc, path)
        if operation == "add" and isinstance(target, (dict, list)):
            if isinstance(target, dict):
                target[draw(ODD_KEYS)] = draw(WRONG_VALUES)
            else:
                target.append(draw(WRONG_VALUES))
        elif operation == "delete" and path:
            del _at(doc, path[:-1])[path[-1]]
        elif path:
            _at(doc, path[:-1])[path[-1]] = draw(WRONG_VALUES)
        else:
            doc = draw(WRONG_VALUES)
    return doc


YAML_TOKENS = [
    "schema_version: 1\n",
    "kind: autoprune-policy\n",
    "policy:\n",
    "  layers:\n",
    "    fc1: {sparsity: 0.5}\n",
    "sparsity:\n",
    "  low: ",
    "finetune: {lr: ",
    "!!timestamp ",
    "!!int ",
    "!!float ",
    "!!bool ",
    "!!binary ",
    "!!set ",
    "!!omap ",
    "!!pairs ",
    "!!str ",
    "!!python/object:os.system ",
    "&a ",
    "*a ",
    "<<: ",
    "[",
    "]",
    "{",
    "}",
    ", ",
    ": ",
    "- ",
    "\n",
    "  ",
    "? ",
    "'",
    '"',
    "#",
    "x",
    "1",
    "0.5",
    "1e400",
    ".nan",
    "null",
    "2020-13-45",
    "maybe",
    "%YAML 1.1\n",
    "---\n",
    "...\n",
    "|\n",
    ">\n",
    "\t",
    "\x00",
    "\ufeff",
    "\\u",
    "9" * 5000,
]


@st.composite
def file_contents(draw, bases, suffixes):
    """(suffix, bytes): a dumped mutation, a truncated valid file, random text, random bytes or YAML-ish tokens."""
    suffix = draw(st.sampled_from(suffixes))
    source = draw(st.sampled_from(["mutated", "mutated", "truncated", "text", "bytes", "tokens"]))
    if source in ("mutated", "truncated"):
        doc = draw(mutations(bases)) if source == "mutated" else draw(st.sampled_from(bases))
        text = json.dumps(doc) if suffix == ".json" else yaml.safe_dump(doc, sort_keys=False)
        data = text.encode("utf-8")
        if source == "truncated":
            data = data[: draw(st.integers(0, len(data)))]
        return suffix, data
    if source == "text":
        return suffix, draw(st.text(max_size=200)).encode("utf-8")
    if source == "bytes":
        return suffix, draw(st.binary(max_size=200))
    return suffix, "".join(draw(st.lists(st.sampled_from(YAML_TOKENS), max_size=30))).encode(
        "utf-8"
    )


DEEP = [
    (".yaml", b"[" * 5000),
    (".json", b"[" * 100000),
    (".yaml", b"- " * 3000 + b"1"),
    (".yaml", b"{a: " * 3000),
]
PARSER_TRAPS = [
    (".yaml", b"a: !!timestamp 1"),
    (".yaml", b"a: !!bool maybe"),
    (".yaml", b"a: !!int x"),
    (".yaml", b"!!int "),
    (".yaml", b"a: " + b"1" * 5000),
    (".json", b"1" * 5000),
    (".yaml", b"\xff\xfe"),
    (".json", b"\xc3"),
]


def _with_examples(examples):
    def decorate(test):
        for item in reversed(examples):
            test = example(content=item)(test)
        return test

    return decorate


# --------------------------------------------------------------------------- policies


def check_policy_data(data, loader: str) -> None:
    """parse_policy_document and Policy.from_dict: a valid round-tripping document or a clean PolicyError."""
    before = repr(data)
    try:
        document = parse_policy_document(data, source="fuzz.yaml")
    except Exception as exc:  # noqa: BLE001 - the property is about which exception
        expect_clean_error(exc, PolicyError)
        count(loader, "rejected")
    else:
        assert isinstance(document, PolicyDocument) and isinstance(document.policy, Policy)
        again = parse_policy_document(copy.deepcopy(document.to_dict()))
        assert again.policy == document.policy and again.fingerprint == document.fingerprint
        count(loader, "accepted")
    assert repr(data) == before, "the loader changed its input"
    section = data.get("policy", data) if isinstance(data, dict) else data
    try:
        policy = Policy.from_dict(section)
    except Exception as exc:  # noqa: BLE001
        expect_clean_error(exc, PolicyError)
    else:
        assert Policy.from_dict(policy.to_dict()) == policy
    assert repr(data) == before, "Policy.from_dict changed its input"


@fuzz_settings(600)
@given(data=mutations(POLICY_BASES))
def test_policy_document_mutations(data):
    check_policy_data(data, "policy_document")


@fuzz_settings(100)
@given(data=WRONG_VALUES)
def test_policy_document_random_values(data):
    check_policy_data(data, "policy_document")


def check_policy_file(path: Path, directory: Path) -> PolicyDocument | None:
    try:
        document = load_policy(path)
    except Exception as exc:  # noqa: BLE001
        expect_clean_error(exc, PolicyError)
        count("policy_file", "rejected")
        return None
    assert isinstance(document, PolicyDocument)
    for suffix in dict.fromkeys(
        [path.suffix, ".yaml", ".json"]
    ):  # its own format first, then the others
        again_path = directory / f"again{suffix}"
        try:
            save_policy(again_path, document)
        except Exception as exc:  # noqa: BLE001
            # provenance or results may hold what only YAML can store (a date as a key, ...)
            assert suffix == ".json" != path.suffix, (
                f"a loaded document cannot be saved as {suffix}: {exc!r}"
            )
            expect_clean_error(exc, PolicyError)
            continue
        again = load_policy(again_path)
        assert again.policy == document.policy and again.fingerprint == document.fingerprint
    count("policy_file", "accepted")
    return document


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@fuzz_settings(400)
@given(content=file_contents(POLICY_BASES, [".yaml", ".yml", ".json"]))
@_with_examples(
    DEEP
    + PARSER_TRAPS
    + [
        (
            ".yaml",
            b"provenance: {a: !!omap [b: 1], b: !!set {x}, c: !!binary aGk=, d: 2024-01-01}\n"
            b"policy: {layers: {fc1: {sparsity: 0.5}}}\nschema_version: 1\n",
        ),
        (
            ".yaml",
            b"results: {2024-01-01: 1}\npolicy: {layers: {fc1: {sparsity: 0.5}}}\nschema_version: 1\n",
        ),
    ]
)
def test_policy_file_malformed(fuzz_dir, content):
    suffix, data = content
    path = fuzz_dir / f"policy{suffix}"
    path.write_bytes(data)
    check_policy_file(path, fuzz_dir)


# --------------------------------------------------------------------------- search spaces


def check_space(load, loader: str, data=None) -> None:
    before = repr(data)
    try:
        space = load()
    except Exception as exc:  # noqa: BLE001
        expect_clean_error(exc, SearchSpaceError)
        count(loader, "rejected")
    else:
        assert isinstance(space, SearchSpace)
        assert SearchSpace.from_dict(copy.deepcopy(space.to_dict())) == space
        count(loader, "accepted")
    assert repr(data) == before, "the loader changed its input"


@fuzz_settings(600)
@given(data=mutations(SPACE_BASES))
def test_search_space_mutations(data):
    check_space(lambda: SearchSpace.from_dict(data), "search_space_dict", data)


@fuzz_settings(100)
@given(data=WRONG_VALUES)
def test_search_space_random_values(data):
    check_space(lambda: SearchSpace.from_dict(data), "search_space_dict", data)


@fuzz_settings(350)
@given(content=file_contents(SPACE_BASES, [".yaml", ".yml"]))
@_with_examples([c for c in DEEP + PARSER_TRAPS if c[0] != ".json"])
def test_search_space_file_malformed(fuzz_dir, content):
    suffix, data = content
    path = fuzz_dir / f"space{suffix}"
    path.write_bytes(data)
    check_space(lambda: load_space(path), "search_space_file")


# --------------------------------------------------------------------------- budgets

NUMBERS = st.one_of(
    st.floats(allow_nan=False).map(repr),
    st.floats(min_value=0, max_value=1e6).map(lambda x: f"{x:e}"),
    st.floats(min_value=0, max_value=2).map(lambda x: f"{x:.3f}"),
    st.integers(0, 10**12).map(str),
    st.sampled_from(
        [
            "0",
            "0.0",
            "1",
            "1.0",
            "1e-320",
            "5e-324",
            "1e400",
            "1e308",
            "9" * 400,
            ".5",
            "5.",
            "-0.5",
            "+1",
            "1e",
            "0x10",
            "nan",
            "inf",
            "1_000",
            "٣",
            "1..2",
            "",
        ]
    ),
)
UNITS = st.sampled_from(
    [
        "",
        "",
        "%",
        "x",
        "k",
        "K",
        "m",
        "M",
        "G",
        "g",
        "b",
        "B",
        "KB",
        "MB",
        "GB",
        "KiB",
        "MiB",
        "GiB",
        "ms",
        "s",
        "us",
        "µs",
        "sec",
        "xyz",
        "\u212a",
        "\u017f",
        "%%",
    ]
)
SEPARATORS = st.sampled_from(["=", "=", "=", ":", " ", "==", ""])
SPACES = st.sampled_from(["", "", " ", "\t", "\u00a0", "\n"])


@st.composite
def budget_texts(draw):
    """A budget string: composed from parts, a mutated valid one, or random text."""
    source = draw(st.sampled_from(["composed", "composed", "mutated", "mutated", "text"]))
    if source == "composed":
        kind = draw(
            st.sampled_from([*KINDS, *KINDS, "PARAMS", " size ", "Latency", "flops", "", "param"])
        )
        return (
            kind
            + draw(SEPARATORS)
            + draw(SPACES)
            + draw(NUMBERS)
            + draw(SPACES)
            + draw(UNITS)
            + draw(SPACES)
        )
    if source == "text":
        return draw(st.text(max_size=30))
    text = draw(st.sampled_from(BUDGET_BASES))
    alphabet = st.sampled_from(
        list("0123456789.eE+-%x=, kKmMgGbBiIsSu") + ["\u212a", "\u00a0", "\n", "٣", "nan"]
    )
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        operation = draw(st.sampled_from(["insert", "delete", "replace", "repeat"]))
        if operation == "insert":
            text = text[:at] + draw(alphabet) + text[at:]
        elif operation == "delete":
            text = text[:at] + text[at + 1 :]
        elif operation == "replace":
            text = text[:at] + draw(alphabet) + text[at + 1 :]
        else:
            text = text[:at] + text[at:] * draw(st.integers(2, 3))
    return text


def check_budget(budget: Budget) -> None:
    assert isinstance(budget, Budget) and budget.kind in KINDS
    assert isinstance(budget.value, float) and math.isfinite(budget.value) and budget.value > 0, (
        budget
    )
    if budget.relative:
        assert 0 < budget.value < 1, budget
    limit = budget.limit(1000.0)
    assert math.isfinite(limit) and limit > 0
    assert str(budget) and budget.slug


@fuzz_settings(1200)
@given(text=budget_texts())
@example(text="size=1e300GB")
@example(text="latency=1e-320us")
@example(text="params=1e-400")
def test_budget_strings(text):
    try:
        budget = parse_budget(text)
    except Exception as exc:  # noqa: BLE001
        expect_clean_error(exc, BudgetError)
        count("budget", "rejected")
    else:
        check_budget(budget)
        assert parse_budget(text) == budget
        count("budget", "accepted")


JUNK = st.one_of(
    st.none(),
    st.integers(),
    st.floats(),
    st.binary(max_size=5),
    st.lists(st.text(max_size=5), max_size=2),
    st.just(Budget("params", 0.1, relative=True)),
)


@fuzz_settings(500)
@given(
    texts=st.one_of(
        st.lists(st.one_of(budget_texts(), budget_texts(), JUNK), max_size=4),
        st.lists(st.sampled_from(BUDGET_BASES), max_size=3),
        st.lists(st.sampled_from(BUDGET_BASES), max_size=3).map(", ".join),
        st.lists(budget_texts(), max_size=4).map(",".join),
        JUNK,
        st.dictionaries(budget_texts(), st.none(), max_size=2),
    )
)
@example(texts=None)
@example(texts=5)
@example(texts=[])
@example(texts="params=0.1,params=0.2")
def test_budget_lists(texts):
    before = repr(texts)
    try:
        budgets = parse_budgets(texts)
    except Exception as exc:  # noqa: BLE001
        expect_clean_error(exc, BudgetError)
        count("budgets", "rejected")
    else:
        assert isinstance(budgets, list) and budgets
        for budget in budgets:
            check_budget(budget)
        kinds = [b.kind for b in budgets]
        assert len(set(kinds)) == len(kinds)
        count("budgets", "accepted")
    assert repr(texts) == before, "parse_budgets changed its input"


# --------------------------------------------------------------------------- nothing partly applied


def _refused_by_loader(path: Path) -> bool:
    try:
        load_policy(path)
    except PolicyError:
        return True
    return False


def run_cli(argv: list[str]) -> tuple[int, str]:
    from autoprune.cli import main

    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        status = main(argv)
    return status, stderr.getvalue()


def expect_cli_refusal(policy_path: Path, out_dir: Path, *extra: str) -> None:
    argv = [
        "apply",
        str(policy_path),
        "--task",
        "digits-mlp",
        "--out",
        str(out_dir),
        "--quiet",
        *extra,
    ]
    status, stderr = run_cli(argv)
    assert status == 2, stderr
    assert stderr.startswith("autoprune: error:") and stderr.count("\n") == 1, repr(stderr)
    assert not out_dir.exists(), "a refused policy left an output directory behind"


@fuzz_settings(15)
@given(content=file_contents(POLICY_BASES, [".yaml", ".json"]))
@_with_examples(
    [
        (".yaml", b"[" * 5000),
        (".yaml", b"policy: {layers: {fc1: {sparsity: 1.5}}}\nschema_version: 1\n"),
    ]
)
def test_cli_apply_refuses_malformed_policy(fuzz_dir, content):
    suffix, data = content
    path = fuzz_dir / f"cli{suffix}"
    path.write_bytes(data)
    assume(_refused_by_loader(path))
    count("cli_apply", "rejected")
    expect_cli_refusal(path, fuzz_dir / "cli-out")


def _document_path(directory: Path, name: str, document: PolicyDocument) -> Path:
    path = directory / f"{name}.yaml"
    save_policy(path, document)
    return path


# Valid policy files that do not fit DigitsMLP: refused after loading, once the model is known.
NOT_FITTING = {
    "wrong-shapes": PolicyDocument(
        Policy.uniform(["fc1"], 0.5), fingerprint={"fc1": [3, 3], "fc2": [64, 128]}
    ),
    "unknown-layer": PolicyDocument(Policy.uniform(["fc1", "fc9"], 0.5)),
    # fc1 loses half its neurons, so fc2 has 64 inputs, which M=7 does not divide
    "nm-after-structured": PolicyDocument(
        Policy(
            layers={
                "fc1": LayerPolicy(granularity="structured", channel_ratio=0.5),
                "fc2": LayerPolicy(granularity="nm", nm="3:7"),
            }
        )
    ),
}


@pytest.fixture(scope="module")
def digits_checkpoint(tmp_path_factory):
    """An untrained DigitsMLP's weights: apply refuses the policy either way, without training a model."""
    from autoprune._weights import save_weights
    from autoprune.tasks.models import DigitsMLP

    path = tmp_path_factory.mktemp("checkpoint") / "dense.safetensors"
    torch.manual_seed(0)
    save_weights(path, DigitsMLP().state_dict())
    return path


@pytest.mark.parametrize("case", sorted(NOT_FITTING))
def test_cli_apply_refuses_policy_that_does_not_fit(tmp_path, digits_checkpoint, case):
    path = _document_path(tmp_path, case, NOT_FITTING[case])
    expect_cli_refusal(path, tmp_path / "out", "--checkpoint", str(digits_checkpoint))
    count("cli_apply", "rejected")


def expect_model_untouched(policy, expected: type[AutopruneError]) -> None:
    from autoprune.apply import apply_policy
    from autoprune.tasks.models import DigitsMLP

    torch.manual_seed(0)
    model = DigitsMLP()
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    with pytest.raises(expected) as info:
        apply_policy(model, policy, example_input=torch.zeros(1, 64))
    expect_clean_error(info.value, expected)
    after = model.state_dict()
    assert after.keys() == before.keys()
    assert all(torch.equal(after[name], before[name]) for name in before), (
        "a refused policy changed the model"
    )
    assert not hasattr(model, "_autoprune_history")


@fuzz_settings(30)
@given(content=file_contents(POLICY_BASES, [".yaml", ".yml", ".json"]))
def test_apply_policy_refuses_malformed_file(fuzz_dir, content):
    suffix, data = content
    path = fuzz_dir / f"apply{suffix}"
    path.write_bytes(data)
    assume(_refused_by_loader(path))
    expect_model_untouched(path, PolicyError)
    count("apply_policy", "rejected")


@pytest.mark.parametrize(
    "case", ["data-driven-without-task", "unknown-layer", "wrong-shapes", "nm-after-structured"]
)
def test_apply_policy_refuses_policy_that_does_not_fit(tmp_path, case):
    document = NOT_FITTING.get(case) or PolicyDocument(
        Policy.uniform(["fc1"], 0.5, criterion="taylor")
    )
    expected = PolicyError if case in ("wrong-shapes", "data-driven-without-task") else PruningError
    expect_model_untouched(_document_path(tmp_path, case, document), expected)
    count("apply_policy", "rejected")


DATA_FREE = ["l1", "l2", "random", "lamp", "magnitude"]
AMOUNTS = st.floats(0, 0.999)


@st.composite
def digits_policies(draw):
    """Valid policies over DigitsMLP's layers, some of which it cannot carry out (N:M widths, caps, the output layer)."""
    names = draw(
        st.lists(st.sampled_from(["fc1", "fc2", "fc3"]), min_size=1, max_size=3, unique=True)
    )
    settings_ = {
        "min_kept": draw(st.integers(1, 200)),
        "round_to": draw(st.none() | st.integers(1, 200)),
        "seed": draw(st.integers(0, 2**63 - 1)),
    }
    if draw(st.booleans()):
        return Policy.global_ranking(
            names,
            draw(AMOUNTS),
            granularity=draw(st.sampled_from(["unstructured", "structured"])),
            criterion=draw(st.sampled_from(DATA_FREE)),
            max_sparsity=draw(st.none() | AMOUNTS),
            **settings_,
        )
    kinds = draw(
        st.sampled_from(
            [("unstructured", "structured"), ("unstructured", "nm"), ("structured", "nm")]
        )
    )
    layers = {}
    for name in names:
        granularity, criterion = draw(st.sampled_from(kinds)), draw(st.sampled_from(DATA_FREE))
        amount = {
            "unstructured": ("sparsity", AMOUNTS),
            "structured": ("channel_ratio", AMOUNTS),
            "nm": ("nm", st.sampled_from(["1:2", "2:4", "3:7", "2:8", "1:64", "63:64", "1:1000"])),
        }[granularity]
        layers[name] = LayerPolicy(
            granularity=granularity, criterion=criterion, **{amount[0]: draw(amount[1])}
        )
    return Policy(layers=layers, **settings_)


@fuzz_settings(100)
@given(policy=digits_policies())
def test_apply_policy_all_or_nothing(policy):
    """A valid policy is carried out whole, or refused with the project's error and the model left as it was."""
    from autoprune.apply import apply_policy
    from autoprune.tasks.models import DigitsMLP

    torch.manual_seed(0)
    model = DigitsMLP()
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    try:
        pruned = apply_policy(model, policy, example_input=torch.zeros(1, 64))
    except Exception as exc:  # noqa: BLE001
        expect_clean_error(exc, AutopruneError)
        outcome = "rejected"
    else:
        assert pruned.model(torch.zeros(2, 64)).shape == (2, 10)
        outcome = "accepted"
    after = model.state_dict()  # whatever happened, the caller's model is exactly as it was
    assert after.keys() == before.keys()
    assert all(torch.equal(after[name], before[name]) for name in before), (
        f"changed the caller's model ({outcome})"
    )
    count("apply_policy_valid", outcome)


# --------------------------------------------------------------------------- hostile documents


def _mapping_paths(value, prefix=()):
    """Paths of every mapping in ``value`` (the root included)."""
    if isinstance(value, dict):
        yield prefix
        for key, item in value.items():
            yield from _mapping_paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _mapping_paths(item, prefix + (index,))


def _emit(value) -> str:
    """Flow-style YAML (and JSON when the keys are text) of plain data, where a mapping is a
    list of (key, value) pairs, so a key may be given twice."""
    if isinstance(value, tuple) and value and value[0] == "pairs":
        return "{" + ", ".join(f"{_emit(k)}: {_emit(v)}" for k, v in value[1]) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_emit(v) for v in value) + "]"
    return json.dumps(value)


def _as_pairs(value):
    if isinstance(value, dict):
        return ("pairs", [(k, _as_pairs(v)) for k, v in value.items()])
    if isinstance(value, list):
        return [_as_pairs(v) for v in value]
    return value


def _plain_keys(value) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain_keys(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain_keys(v) for v in value)
    return value is None or isinstance(value, (str, int, float, bool))


@st.composite
def duplicate_key_texts(draw, bases):
    """A valid document in flow style with one key of one mapping given a second time."""
    doc = copy.deepcopy(draw(st.sampled_from(bases)))
    paths = [p for p in _mapping_paths(doc) if _at(doc, p)]
    assume(_plain_keys(doc) and paths)
    path = draw(st.sampled_from(paths))
    target = _at(doc, path)
    key = draw(st.sampled_from(sorted(target)))
    pairs = _as_pairs(doc)
    node = pairs
    for step in path:
        node = dict(node[1])[step] if isinstance(step, str) else node[step]
    second = draw(st.one_of(st.just(target[key]), WRONG_VALUES))
    node[1].insert(draw(st.integers(0, len(node[1]))), (key, _as_pairs(second)))
    return _emit(pairs), key


@st.composite
def alias_texts(draw, bases):
    """A valid YAML document whose value at a random spot is an alias of an anchored one: a bomb
    of up to 10**9 leaves, or one shared list as YAML's own dumper writes it."""
    doc = copy.deepcopy(draw(st.sampled_from(bases)))
    assume(isinstance(doc, dict))
    levels, width = draw(st.integers(1, 9)), draw(st.integers(1, 10))
    bomb = ["b0: &b0 [" + ", ".join(["lol"] * width) + "]"]
    bomb += [f"b{i}: &b{i} [" + ", ".join([f"*b{i - 1}"] * width) + "]" for i in range(1, levels)]
    shared = [1, 2]
    spot = draw(st.sampled_from(["provenance", "results", "name", "description", "sparsity", "x"]))
    if draw(st.booleans()):
        doc[spot] = {"a": shared, "b": shared}  # the dumper anchors a list given twice
        return yaml.safe_dump(doc, sort_keys=False)
    text = yaml.safe_dump({k: v for k, v in doc.items() if k != spot}, sort_keys=False)
    return "\n".join(bomb) + "\n" + text + f"{spot}: *b{levels - 1}\n"


OVERSIZED = st.one_of(
    st.integers(10_000, 200_000).map(lambda n: "x" * n),
    st.integers(10_000, 100_000).map(lambda n: list(range(n))),
    st.integers(50, 400).map(
        lambda depth: __import__("functools").reduce(lambda v, _: [v], range(depth), 0)
    ),
    st.integers(50, 400).map(
        lambda depth: __import__("functools").reduce(lambda v, _: {"k": v}, range(depth), 0)
    ),
    st.sampled_from([10**1000, -(10**4000), 2**13_000]),  # within repr's 4,300 digits
    st.integers(1000, 20_000).map(lambda n: {f"key{i}": "v" * 50 for i in range(n)}),
    st.integers(1000, 20_000).map(lambda n: "k" * n).map(lambda key: {key: 1}),
)


@st.composite
def oversized_documents(draw, bases):
    """A valid document with an oversized value at a random path (or as a new key)."""
    doc = copy.deepcopy(draw(st.sampled_from(bases)))
    path = draw(st.sampled_from(list(_paths(doc))))
    value = draw(OVERSIZED)
    if not path:
        return value
    parent = _at(doc, path[:-1])
    if isinstance(parent, dict) and draw(st.booleans()):
        parent["x" * draw(st.integers(1, 5000))] = value
    else:
        parent[path[-1]] = value
    return doc


def _load_file(loader, directory: Path, suffix: str, text: str):
    path = directory / f"hostile{suffix}"
    path.write_text(text, encoding="utf-8")
    return loader(path)


FILE_LOADERS = {
    "policy": (load_policy, PolicyError, POLICY_BASES),
    "space": (load_space, SearchSpaceError, SPACE_BASES),
}


@fuzz_settings(60)
@given(which=st.sampled_from(sorted(FILE_LOADERS)), data=st.data())
def test_aliases_are_refused_in_one_short_line(fuzz_dir, which, data):
    loader, error, bases = FILE_LOADERS[which]
    text = data.draw(alias_texts(bases))
    with pytest.raises(error) as info:
        _load_file(loader, fuzz_dir, ".yaml", text)
    expect_clean_error(info.value, error)
    assert "anchors and aliases (&name, *name) are not allowed" in str(info.value)
    count("aliases", "rejected")


@fuzz_settings(150)
@given(
    which=st.sampled_from(sorted(FILE_LOADERS)),
    suffix=st.sampled_from([".yaml", ".json"]),
    data=st.data(),
)
def test_a_key_given_twice_is_refused_in_one_short_line(fuzz_dir, which, suffix, data):
    loader, error, bases = FILE_LOADERS[which]
    text, key = data.draw(duplicate_key_texts(bases))
    with pytest.raises(error) as info:
        _load_file(loader, fuzz_dir, suffix, text)
    expect_clean_error(info.value, error)
    assert "is given twice" in str(info.value)
    count("duplicate_keys", "rejected")


POLICY_SECTIONS = [base.get("policy", base) for base in POLICY_BASES]


def check_policy_section(data) -> None:
    """Policy.from_dict: a valid round-tripping policy or a clean, short PolicyError."""
    before = repr(data)
    try:
        policy = Policy.from_dict(data)
    except Exception as exc:  # noqa: BLE001
        expect_clean_error(exc, PolicyError)
        count("oversized", "rejected")
    else:
        assert Policy.from_dict(policy.to_dict()) == policy
        count("oversized", "accepted")
    assert repr(data) == before, "Policy.from_dict changed its input"


@fuzz_settings(120)
@given(which=st.sampled_from(["policy", "space"]), data=st.data())
def test_oversized_values_give_short_messages(which, data):
    if which == "policy":
        check_policy_section(data.draw(oversized_documents(POLICY_SECTIONS)))
    else:
        doc = data.draw(oversized_documents(SPACE_BASES))
        check_space(lambda: SearchSpace.from_dict(doc), "oversized", doc)


@fuzz_settings(120)
@given(data=oversized_documents(POLICY_BASES))
def test_oversized_values_in_policy_documents_give_short_messages(data):
    check_policy_data(data, "oversized_document")


@pytest.mark.parametrize("which", sorted(FILE_LOADERS))
def test_files_over_the_size_cap_are_refused(tmp_path, which):
    from autoprune._yaml import MAX_BYTES

    loader, error, _ = FILE_LOADERS[which]
    path = tmp_path / "huge.yaml"
    path.write_text("# padding\n" * (MAX_BYTES // 10 + 1))
    with pytest.raises(error) as info:
        loader(path)
    expect_clean_error(info.value, error)
    assert "autoprune reads files of at most" in str(info.value)
    count("oversized", "rejected")


# --------------------------------------------------------------------------- the numbers


def test_zz_report_counts():
    """Every loader saw malformed input; the counts go to $AUTOPRUNE_FUZZ_COUNTS when it is set."""
    loaders = [
        "policy_document",
        "policy_file",
        "search_space_dict",
        "search_space_file",
        "budget",
        "budgets",
        "cli_apply",
        "apply_policy",
        "apply_policy_valid",
        "aliases",
        "duplicate_keys",
        "oversized",
    ]
    for loader in loaders:
        assert COUNTS.get(loader, Counter())["rejected"] > 0, f"no malformed input reached {loader}"
    report = {
        loader: {key: COUNTS[loader][key] for key in ("generated", "rejected", "accepted")}
        for loader in loaders
    }
    target = os.environ.get("AUTOPRUNE_FUZZ_COUNTS")
    if target:  # never into the committed results unless asked
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        Path(target).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
