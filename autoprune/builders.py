"""Model builders a policy file may name: ``module:qualname``, imported only when trusted.

A policy file alone never makes autoprune import code: the builder it names is
used only when it is one of :data:`BUILTIN_BUILDERS` or on the caller's
allow-list (``trusted=`` or ``$AUTOPRUNE_TRUSTED_BUILDERS``, comma-separated).

Example:
    >>> from autoprune.tasks.models import DigitsMLP
    >>> builder_path(DigitsMLP)
    'autoprune.tasks.models:DigitsMLP'
    >>> import_builder("autoprune.tasks.models:DigitsMLP") is DigitsMLP
    True
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterable

from torch import nn

from autoprune._echo import shorten
from autoprune.errors import AutopruneError, PolicyError

# The model builders of autoprune's built-in tasks: the builders a policy file may name on its own.
BUILTIN_BUILDERS = (
    "autoprune.tasks.models:DigitsMLP",
    "autoprune.tasks.models:FashionCNN",
    "autoprune.tasks.models:FashionResNet",
    "autoprune.tasks.minilm:SentenceEncoder",
    "autoprune.tasks.tabular:TabularMLP",
)
TRUSTED_BUILDERS_ENV = "AUTOPRUNE_TRUSTED_BUILDERS"  # more builders, comma-separated


def builder_path(build_model: Callable) -> str | None:
    """``module:qualname`` of an importable model builder (a class or function), else None."""
    module, name = (
        getattr(build_model, "__module__", None),
        getattr(build_model, "__qualname__", ""),
    )
    if not module or "<" in name or module == "__main__":
        return None
    return f"{module}:{name}"


def trusted_builders(extra: Iterable[str] | str = ()) -> frozenset[str]:
    """The builders a policy file may name: the built-in tasks', ``$AUTOPRUNE_TRUSTED_BUILDERS`` and ``extra``."""
    if isinstance(extra, str):
        extra = [extra]
    from_env = os.environ.get(TRUSTED_BUILDERS_ENV, "").split(",")
    return frozenset(BUILTIN_BUILDERS) | {
        name.strip() for name in [*from_env, *extra] if name.strip()
    }


def check_builder_path(path) -> str:
    """``path`` if it reads ``module:qualname`` (dotted identifiers, no relative module), else PolicyError."""
    module, sep, qualname = path.partition(":") if isinstance(path, str) else ("", "", "")
    if not (
        sep
        and all(part.isidentifier() for part in module.split("."))
        and all(part.isidentifier() for part in qualname.split("."))
    ):
        raise PolicyError(
            "The 'builder' must be 'module:qualname' (dotted Python names, e.g. "
            f"'autoprune.tasks.models:DigitsMLP'). Got {shorten(repr(path), text=True)} instead."
        )
    return path


def import_builder(path: str, *, trusted: Iterable[str] | str = ()) -> Callable[[], nn.Module]:
    """The callable named by ``module:qualname``, imported only if it is a trusted builder.

    Trusted are :data:`BUILTIN_BUILDERS`, the comma-separated names in
    ``$AUTOPRUNE_TRUSTED_BUILDERS`` and ``trusted``; anything else is refused
    before anything is imported.
    """
    path = check_builder_path(path)
    if path not in trusted_builders(trusted):
        raise PolicyError(
            f"The policy names the model builder '{shorten(path, text=True)}', which is not a trusted builder; "
            "autoprune imports nothing a policy file names on its own. Pass build_model= (--task on "
            f"the command line), or trust it with trusted_builders= or ${TRUSTED_BUILDERS_ENV}."
        )
    module_name, _, qualname = path.partition(":")
    try:
        target = importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise AutopruneError(
            f"Cannot import the model builder '{shorten(path, text=True)}': {shorten(exc, text=True)}"
        ) from exc
    return target
