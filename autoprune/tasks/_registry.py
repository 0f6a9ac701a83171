"""One registry for built-in tasks and task files.

A task is found by name (``"fashion-cnn"``) or by a file spec
(``"path/to/file.py:function"``, where the function returns a :class:`Task`).
The same resolution serves the CLI's ``--task`` and :func:`get_task`.

The built-in tasks are listed in :data:`BUILTIN_TASKS` as ``"module:function"``
and imported when first asked for; their modules know nothing of this registry.
:func:`register_task` adds a factory of one's own under a name.

Example:
    >>> get_task("digits-mlp").name
    'digits-mlp'
    >>> "fashion-cnn" in available_tasks()
    True
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import math
import sys
from collections.abc import Callable
from pathlib import Path

from autoprune._validation import shorten
from autoprune.errors import TaskError

# name -> ("module:function" of its factory, one-line description)
BUILTIN_TASKS: dict[str, tuple[str, str]] = {
    "breast-cancer-mlp": (
        "autoprune.tasks.tabular:breast_cancer_mlp_task",
        "scikit-learn breast cancer (30 named features), an MLP 30-64-32-2: tabular",
    ),
    "digits-mlp": (
        "autoprune.tasks.digits:digits_mlp_task",
        "scikit-learn digits (8x8), an MLP 64-128-64-10: tiny and fast",
    ),
    "fashion-cnn": (
        "autoprune.tasks.fashion:fashion_cnn_task",
        "Fashion-MNIST, the classic 421,642-parameter CNN (2 conv + 2 fc)",
    ),
    "fashion-resnet": (
        "autoprune.tasks.fashion:fashion_resnet_task",
        "Fashion-MNIST, a small ResNet with BatchNorm and residual additions",
    ),
    "llama-docs": (
        "autoprune.tasks.decoder:llama_docs_task",
        "a character-level LLaMA decoder (grouped-query attention) on CPython's docs, "
        "next-token accuracy (needs the transformers extra)",
    ),
    "minilm-fidelity": (
        "autoprune.tasks.minilm:minilm_task",
        "all-MiniLM-L6-v2 (6-layer BERT) sentence embeddings, fidelity to the dense model "
        "(needs the transformers extra)",
    ),
}
_REGISTERED: dict[str, tuple[Callable[..., object], str]] = {}  # register_task's, by name


def register_task(name: str, description: str = "") -> Callable:
    """Decorator: register a zero-argument (keyword options allowed) task factory under ``name``.

    The name then works wherever a built-in task's does (:func:`get_task`, ``--task``
    in this process); a built-in task of the same name is shadowed.
    """

    def decorator(factory: Callable[..., object]) -> Callable[..., object]:
        _REGISTERED[name] = (factory, description)
        return factory

    return decorator


def available_tasks() -> dict[str, str]:
    """Names of the built-in and registered tasks and their one-line descriptions."""
    described = {name: text for name, (_, text) in BUILTIN_TASKS.items()}
    described.update({name: text for name, (_, text) in _REGISTERED.items()})
    return dict(sorted(described.items()))


def task_factory(name: str) -> Callable[..., object]:
    """The factory of a registered or built-in task (its module imported now)."""
    if name in _REGISTERED:
        return _REGISTERED[name][0]
    module, _, function = BUILTIN_TASKS[name][0].partition(":")
    return getattr(importlib.import_module(module), function)


def get_task(name_or_path, **options):
    """Resolve a task by built-in name or ``file.py:function`` spec.

    ``options`` are passed to a built-in task's factory (e.g. ``train_size``).
    A :class:`Task` passed in is returned unchanged.
    """
    from autoprune.tasks._task import Task

    if isinstance(name_or_path, Task):
        return name_or_path
    if not isinstance(name_or_path, str) or not name_or_path:
        raise TaskError(f"A task is named by a string. Got {shorten(name_or_path)} instead.")
    spec = name_or_path
    if ":" in spec or spec.endswith(".py"):
        task = _task_from_file(spec)
    else:
        task = _builtin_task(spec, options)
    task.spec, task.spec_options = spec, dict(options)
    return task


def _builtin_task(name: str, options: dict):
    if name not in BUILTIN_TASKS and name not in _REGISTERED:
        known = ", ".join(available_tasks())
        raise TaskError(
            f"Unknown task {shorten(name)}. Available tasks: {known}; "
            "or give a task file as path/to/file.py:function."
        )
    factory = task_factory(name)
    check_task_options(name, factory, options)
    return factory(**options)


def _option_types(hint) -> tuple[type, ...] | None:
    """The plain types a factory's option annotation admits (``int | None`` -> int, NoneType)."""
    import types
    import typing

    args = (
        typing.get_args(hint)
        if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union
        else (hint,)
    )
    plain = tuple(a for a in args if isinstance(a, type))
    return plain if len(plain) == len(args) else None


def check_task_options(name: str, factory: Callable, options: dict) -> None:
    """Refuse an option a built-in task's factory does not take, or a value of the wrong type.

    Example:
        >>> from autoprune.tasks.digits import digits_mlp_task
        >>> check_task_options("digits-mlp", digits_mlp_task, {"split_seed": [1, 2]})
        Traceback (most recent call last):
        ...
        autoprune.errors.TaskError: The task option 'split_seed' of task 'digits-mlp' must be an integer in [0, 2**63). Got [1, 2] instead.
    """
    import inspect
    import typing

    parameters = inspect.signature(factory).parameters
    hints = typing.get_type_hints(factory)
    open_ended = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    unknown = sorted(set(options) - set(parameters), key=str)
    if unknown and not open_ended:
        raise TaskError(
            f"Task '{name}' does not accept the option(s) {shorten(unknown)}; "
            f"it accepts {', '.join(parameters) or 'none'}."
        )
    for key, value in options.items():
        allowed = _option_types(hints.get(key, typing.Any))
        if allowed is not None and not _option_fits(value, allowed):
            names = {int: "an integer in [0, 2**63)", float: "a number", str: "text"}
            expected = " or ".join(
                names.get(t, "null" if t is type(None) else t.__name__) for t in allowed
            )
            raise TaskError(
                f"The task option '{key}' of task '{name}' must be {expected}. "
                f"Got {shorten(value)} instead."
            )


def _option_fits(value, allowed: tuple[type, ...]) -> bool:
    """Whether ``value`` has one of the ``allowed`` types (a bool is no int; an int is in [0, 2**63))."""
    if isinstance(value, bool):
        return bool in allowed
    if isinstance(value, int) and int in allowed:
        return 0 <= value < 2**63
    if isinstance(value, (int, float)) and float in allowed:
        return not isinstance(value, float) or math.isfinite(value)
    return isinstance(value, allowed)


def _task_from_file(spec: str):
    from autoprune.tasks._task import Task

    path_text, sep, function_name = spec.rpartition(":")
    if not sep or not path_text or not function_name:
        raise TaskError(
            f"Task file spec {shorten(spec)} is malformed: write path/to/file.py:function, "
            "e.g. my_task.py:task."
        )
    path = Path(path_text).expanduser()
    shown_path, shown_function = shorten(str(path), text=True), shorten(function_name, text=True)
    if not path.is_file():
        raise TaskError(f"Task file '{shown_path}' does not exist (from --task {shorten(spec)}).")
    module = _import_file(path)
    if not hasattr(module, function_name):
        public = [n for n in vars(module) if callable(getattr(module, n)) and not n.startswith("_")]
        raise TaskError(
            f"Task file '{shown_path}' has no function '{shown_function}'. "
            f"Callables found: {shorten(', '.join(public) or 'none', text=True)}."
        )
    target = getattr(module, function_name)
    try:
        task = target() if callable(target) and not isinstance(target, Task) else target
    except TaskError:
        raise
    except Exception as exc:
        raise TaskError(
            f"{shown_path}:{shown_function}() raised {type(exc).__name__}: {shorten(exc, text=True)}"
        ) from exc
    if not isinstance(task, Task):
        raise TaskError(
            f"{shown_path}:{shown_function}() must return an autoprune.Task. "
            f"Got {type(task).__name__} instead."
        )
    return task


def _import_file(path: Path):
    resolved = path.resolve()
    digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:10]
    module_name = f"autoprune_task_{resolved.stem}_{digest}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    module_spec = importlib.util.spec_from_file_location(module_name, resolved)
    if module_spec is None or module_spec.loader is None:
        raise TaskError(f"Task file '{path}' cannot be imported as Python.")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module
    sys.path.insert(0, str(resolved.parent))
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[module_name]
        raise TaskError(
            f"Importing task file '{path}' failed: {type(exc).__name__}: {shorten(exc, text=True)}"
        ) from exc
    finally:
        sys.path.remove(str(resolved.parent))
    return module
