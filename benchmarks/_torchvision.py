"""torchvision's model definitions beside a CPU build of torch.

PyPI's torchvision wheels are built against a CUDA torch: installed without
their dependencies beside the CPU torch the project pins, their compiled
operators (``torchvision::nms`` and the others of ``torchvision._C``) cannot
load, and ``import torchvision`` then fails while registering fake (meta)
kernels for those missing operators. The model definitions need none of them.
``make install`` puts ``torchvision==0.28.0`` (the release built for torch
2.13) into a folder of its own, :data:`TARGET` (``.venv/torchvision``), off the
import path: on it, ``transformers`` would import torchvision and fail.
:func:`import_torchvision` adds that folder to the path and tries the compiled
operators; when they cannot load, it imports torchvision with an empty
``torchvision._meta_registrations`` (those registrations only describe the
missing operators' output shapes to torch.compile), so the models, transforms
and everything else in Python work, for ``transformers`` too once imported.

``tests/zoo/`` imports it this way (``benchmarks.zoo`` lists the models).
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import torch

#: where ``make install`` puts torchvision (pip install --no-deps --target)
TARGET = Path(sys.prefix) / "torchvision"
HINT = (
    f"install it with 'make install' (pip install --no-deps --target {TARGET} torchvision==0.28.0)"
)


def compiled_operators_load(package_dir: Path) -> bool:
    """Whether torchvision's compiled operators load with this torch (a CUDA wheel's do not)."""
    library = next(iter(sorted(package_dir.glob("_C*.so"))), None)
    if library is None:
        return False
    try:
        torch.ops.load_library(str(library))
    except OSError:
        return False
    return True


def import_torchvision() -> types.ModuleType:
    """The ``torchvision`` module, importable beside a CPU torch (see the module docstring)."""
    if "torchvision" in sys.modules:
        return sys.modules["torchvision"]
    if TARGET.is_dir() and str(TARGET) not in sys.path:
        sys.path.append(str(TARGET))
    spec = importlib.util.find_spec("torchvision")
    if spec is None or spec.origin is None:
        raise ImportError(f"torchvision is not installed: {HINT}.")
    if not compiled_operators_load(Path(spec.origin).parent):
        name = "torchvision._meta_registrations"
        sys.modules.setdefault(name, types.ModuleType(name))
    import torchvision

    return torchvision
