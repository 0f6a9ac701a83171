"""The package's shape: the public API, light imports, no import cycle, one home per concept."""

from __future__ import annotations

import ast
import inspect
import pydoc
import re
import subprocess
import sys
from pathlib import Path

import pytest

import autoprune

PACKAGE = Path(autoprune.__file__).parent


def run_python(code: str) -> str:
    """Run ``code`` in a fresh interpreter (nothing imported yet) and return what it prints."""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip()


def test_every_public_name_resolves():
    expected = {
        "Task", "Policy", "Budget", "SearchSpace", "SearchResult", "search", "open_run",
        "finalize", "FinalSummary", "build_report", "apply_policy", "load_pruned", "save_pruned",
        "load_policy", "save_policy", "analyse_sensitivity", "export_model", "AutopruneError",
        "ParameterError", "get_task", "dense_model", "profile_model", "measure_latency",
    }  # fmt: skip
    assert expected <= set(autoprune.__all__)
    for name in autoprune.__all__:
        assert getattr(autoprune, name) is not None, name
    assert set(autoprune.__all__) <= set(dir(autoprune))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        autoprune.nope  # noqa: B018


def test_import_autoprune_imports_neither_optuna_nor_pandas():
    loaded = run_python(
        "import sys, autoprune, autoprune.budgets\n"
        "print(sorted(m for m in ('optuna', 'pandas', 'matplotlib') if m in sys.modules))"
    )
    assert loaded == "[]"


def test_search_shows_its_real_signature():
    parameters = inspect.signature(autoprune.search).parameters
    assert {"task", "budget", "n_trials", "space", "out"} <= set(parameters)
    assert "n_trials" in pydoc.render_doc(autoprune.search)
    from autoprune.search import search as the_function

    assert inspect.signature(autoprune.search) == inspect.signature(the_function)


def test_search_is_callable_whatever_was_imported_first():
    printed = run_python(
        "import autoprune.search._study as study\n"  # the sub-package first
        "import autoprune\n"
        "from autoprune import search\n"
        "print(callable(autoprune.search), search is autoprune.search, study.__name__)\n"
        "try:\n"
        "    autoprune.search('digits-mlp', 'params=0.3', n_trials=0)\n"
        "except autoprune.AutopruneError as exc:\n"
        "    print(type(exc).__name__, 'n_trials' in str(exc))\n"
    )
    assert printed.splitlines() == [
        "True True autoprune.search._study",
        "ParameterError True",
    ]


def test_the_task_registry_and_the_task_modules_do_not_import_each_other():
    from autoprune.tasks._registry import BUILTIN_TASKS, available_tasks, task_factory

    for name in ("digits.py", "fashion.py", "minilm.py"):
        tree = ast.parse((PACKAGE / "tasks" / name).read_text())
        imported = {
            node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module
        }
        assert "autoprune.tasks._registry" not in imported, name
    loaded = run_python(
        "import sys, autoprune.tasks._registry as r\n"
        "r.available_tasks()\n"
        "print(sorted(m for m in sys.modules if m.startswith('autoprune.tasks.') and '_' not in m))"
    )
    assert loaded == "[]"  # listing the tasks imports none of them
    assert set(available_tasks()) == set(BUILTIN_TASKS)
    assert all(callable(task_factory(name)) for name in BUILTIN_TASKS)


def _python_files():
    return list(PACKAGE.rglob("*.py"))


def test_error_classes_live_in_errors_py():
    # RefusedYAML is PyYAML's ComposerError too, so it lives beside the loader (errors imports no YAML)
    allowed = {("_yaml.py", "RefusedYAML")}
    found = []
    for path in _python_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(
                re.search(r"(Error|Exception|Refused|Failed|Diverged)$", ast.unparse(base))
                for base in node.bases
            ):
                found.append((str(path.relative_to(PACKAGE)), node.name))
    assert {f for f in found if f[0] != "errors.py"} == allowed


def test_the_granularity_to_field_map_is_defined_once():
    from autoprune.policy import AMOUNT_FIELD

    assert AMOUNT_FIELD["unstructured"] == "sparsity"
    assert AMOUNT_FIELD["structured"] == "channel_ratio"
    spelled = re.compile(r"""["']structured["']\s*:\s*["']channel_ratio["']""")
    homes = [str(p.relative_to(PACKAGE)) for p in _python_files() if spelled.search(p.read_text())]
    assert homes == ["policy/_constraints.py"]


def test_the_benchmarks_are_not_part_of_the_package():
    assert not (PACKAGE / "bench").exists()
    assert not [
        p
        for p in _python_files()
        if "benchmarks" in p.read_text() and "import benchmarks" in p.read_text()
    ]
