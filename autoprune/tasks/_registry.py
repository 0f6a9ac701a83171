"""One registry for built-in tasks and task files.

A task is found by name (``"fashion-cnn"``) or by a file spec
(``"path/to/file.py:function"``, where the function returns a :class:`Task`).
The same resolution serves the CLI's ``--task`` and :func:`get_task`.

Example:
    >>> get_task("digits-mlp").name
    'digits-mlp'
    >>> "fashion-cnn" in available_tasks()
    True
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

from autoprune.errors import TaskError

_BUILTINS: dict[str, tuple[Callable[..., object], str]] = {}


def register_task(name: str, description: str = "") -> Callable:
    """Decorator: register a zero-argument (keyword options allowed) task factory under ``name``."""

    def decorator(factory: Callable[..., object]) -> Callable[..., object]:
        _BUILTINS[name] = (factory, description)
        return factory

    return decorator


def _load_builtins() -> None:
    # Imported here, not at module top, because the built-ins import this module.
    from autoprune.tasks import digits, fashion, minilm  # noqa: F401


def available_tasks() -> dict[str, str]:
    """Names of the built-in tasks and their one-line descriptions."""
    _load_builtins()
    return {name: description for name, (_, description) in sorted(_BUILTINS.items())}


def get_task(name_or_path, **options):
    """Resolve a task by built-in name or ``file.py:function`` spec.

    ``options`` are passed to a built-in task's factory (e.g. ``train_size``).
    A :class:`Task` passed in is returned unchanged.
    """
    from autoprune.tasks._task import Task

    if isinstance(name_or_path, Task):
        return name_or_path
    if not isinstance(name_or_path, str) or not name_or_path:
        raise TaskError(f"A task is named by a string. Got {name_or_path!r} instead.")
    spec = name_or_path
    if ":" in spec or spec.endswith(".py"):
        task = _task_from_file(spec)
    else:
        task = _builtin_task(spec, options)
    task.spec, task.spec_options = spec, dict(options)
    return task


def _builtin_task(name: str, options: dict):
    _load_builtins()
    if name not in _BUILTINS:
        known = ", ".join(sorted(_BUILTINS))
        raise TaskError(
            f"Unknown task '{name}'. Available tasks: {known}; "
            "or give a task file as path/to/file.py:function."
        )
    factory, _ = _BUILTINS[name]
    try:
        return factory(**options)
    except TypeError as exc:
        raise TaskError(
            f"Task '{name}' does not accept the options {sorted(options)}: {exc}"
        ) from exc


def _task_from_file(spec: str):
    from autoprune.tasks._task import Task

    path_text, sep, function_name = spec.rpartition(":")
    if not sep or not path_text or not function_name:
        raise TaskError(
            f"Task file spec '{spec}' is malformed: write path/to/file.py:function, "
            "e.g. my_task.py:task."
        )
    path = Path(path_text).expanduser()
    if not path.is_file():
        raise TaskError(f"Task file '{path}' does not exist (from --task '{spec}').")
    module = _import_file(path)
    if not hasattr(module, function_name):
        public = [n for n in vars(module) if callable(getattr(module, n)) and not n.startswith("_")]
        raise TaskError(
            f"Task file '{path}' has no function '{function_name}'. "
            f"Callables found: {', '.join(public) or 'none'}."
        )
    target = getattr(module, function_name)
    try:
        task = target() if callable(target) and not isinstance(target, Task) else target
    except TaskError:
        raise
    except Exception as exc:
        raise TaskError(f"{path}:{function_name}() raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(task, Task):
        raise TaskError(
            f"{path}:{function_name}() must return an autoprune.Task. "
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
            f"Importing task file '{path}' failed: {type(exc).__name__}: {exc}"
        ) from exc
    finally:
        sys.path.remove(str(resolved.parent))
    return module
