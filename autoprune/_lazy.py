"""How ``import autoprune`` stays light: names whose modules need Optuna or pandas load on first use.

:data:`LAZY` maps each such public name to the module that defines it;
:func:`load` imports that module when the name is first asked for (PEP 562).

``autoprune.search`` names both the sub-package and its entry point. Python binds
a sub-package on its parent once it is imported, so the package is made callable
as its own function: ``autoprune.search(task, budget, ...)`` calls
:func:`autoprune.search.search`, and ``inspect.signature`` and ``help`` show that
function's parameters, whatever was imported first.

Example:
    >>> import inspect
    >>> import autoprune
    >>> "n_trials" in inspect.signature(autoprune.search).parameters
    True
"""

from __future__ import annotations

import importlib
import inspect
import types
from typing import Any

# public name -> the module that defines it (imported on first use: it needs Optuna or pandas)
LAZY = {
    "search": "autoprune.search",
    "open_run": "autoprune.search",
    "SearchOptions": "autoprune.search",
    "SearchResult": "autoprune.search",
    "SearchSpace": "autoprune.search",
    "finalize": "autoprune.final",
    "FinalSummary": "autoprune.final",
    "build_report": "autoprune.report",
    "analyse_sensitivity": "autoprune.sensitivity",
    "SensitivityOptions": "autoprune.sensitivity",
}
# sub-packages named like their entry point: the package, once bound, calls it
ENTRY_PACKAGES = ("search",)


class EntryPackage(types.ModuleType):
    """A sub-package that is also its entry point: calling it calls its function of the same name."""

    def _entry(self):
        return getattr(self, self.__name__.rpartition(".")[2])

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._entry()(*args, **kwargs)

    @property
    def __signature__(self) -> inspect.Signature:
        return inspect.signature(self._entry())


class Package(types.ModuleType):
    """The ``autoprune`` package: binding an entry sub-package (``search``) makes it callable."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ENTRY_PACKAGES and type(value) is types.ModuleType:
            value.__class__ = EntryPackage
        super().__setattr__(name, value)


def install(package: types.ModuleType) -> None:
    """Make ``package`` (``autoprune``) bind its entry sub-packages callable, also those bound already."""
    package.__class__ = Package
    for name in ENTRY_PACKAGES:
        bound = package.__dict__.get(name)
        if type(bound) is types.ModuleType:
            setattr(package, name, bound)


def load(package: types.ModuleType, name: str) -> Any:
    """The public ``name`` of ``package``, its module imported now; AttributeError if unknown."""
    if name not in LAZY:
        raise AttributeError(f"module {package.__name__!r} has no attribute {name!r}")
    module = importlib.import_module(LAZY[name])
    value = module if name in ENTRY_PACKAGES else getattr(module, name)
    setattr(package, name, value)  # an entry sub-package is made callable here
    return getattr(package, name)
