"""The registry of compared methods, by short name, in the order the tables show them.

Example:
    >>> METHOD_NAMES[:3]
    ('dense', 'uniform', 'global-magnitude')
    >>> get_method("lamp").series
    'unstructured'
"""

from __future__ import annotations

from autoprune.errors import AutopruneError
from benchmarks._method import Method, Outcome
from benchmarks._search_methods import SEARCHES
from benchmarks.baselines import BASELINES

_ORDER = (
    "dense",
    "uniform",
    "global-magnitude",
    "lamp",
    "erk",
    "owl",
    "tp-uniform-l1",
    "tp-global-l1",
    "tp-global-taylor",
    "uniform-structured",
    "global-units-l1",
    "global-units-taylor",
    "modelopt-fastnas",
    "autoprune",
    "autoprune-nosens",
    "autoprune-depth",
    "autoprune-r8",
)
METHODS: dict[str, Method] = {
    m.name: m for m in sorted((*BASELINES, *SEARCHES), key=lambda m: _ORDER.index(m.name))
}
METHOD_NAMES: tuple[str, ...] = tuple(METHODS)


def get_method(name: str) -> Method:
    """The method called ``name``; the error lists the known names."""
    if name not in METHODS:
        raise AutopruneError(
            f"Unknown benchmark method {name!r}; expected one of {', '.join(METHOD_NAMES)}."
        )
    return METHODS[name]


__all__ = ["METHODS", "METHOD_NAMES", "Method", "Outcome", "get_method"]
