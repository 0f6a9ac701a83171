"""A stable identity of a task's loss or metric, for cache keys.

Example:
    >>> import functools, operator
    >>> one, two = functools.partial(operator.add, 1), functools.partial(operator.add, 2)
    >>> callable_identity(one) == callable_identity(two)
    False
"""

from __future__ import annotations

import functools
import hashlib


def callable_identity(fn: object) -> str:
    """A stable description of a loss or metric: its qualified name, settings and code.

    Two functions with the same name but different bodies, or two loss modules
    with different settings (``label_smoothing``...), get different identities.

    Example:
        >>> from torch import nn
        >>> callable_identity(nn.CrossEntropyLoss()) == callable_identity(nn.CrossEntropyLoss())
        True
        >>> callable_identity(nn.CrossEntropyLoss(label_smoothing=0.1)) == callable_identity(nn.CrossEntropyLoss())
        False
    """
    if isinstance(fn, functools.partial):
        bound = repr((fn.args, sorted(fn.keywords.items())))
        return f"{callable_identity(fn.func)}+{hashlib.sha256(bound.encode()).hexdigest()[:8]}"
    code = getattr(fn, "__code__", None)
    owner = fn if code is not None or isinstance(fn, type) else type(fn)
    name = f"{owner.__module__}.{owner.__qualname__}"
    h = hashlib.sha256(name.encode())
    if code is not None:
        h.update(code.co_code)
        h.update(repr(code.co_consts).encode())
    else:
        plain = (bool, int, float, str, type(None))
        settings = (
            sorted((k, v) for k, v in vars(fn).items() if isinstance(v, plain))
            if hasattr(fn, "__dict__")
            else []
        )
        h.update(repr(settings).encode())
    return f"{name}:{h.hexdigest()[:12]}"
