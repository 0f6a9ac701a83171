"""The declared fields of a Task and the checks of its name and feature names.

Example:
    >>> check_task_name("digits-mlp"), TRAINING_FIELDS["batch_size"].right
    ('digits-mlp', 65536)
"""

from __future__ import annotations

import re

import torch

from autoprune._validation import MAX_SEED, Interval, shorten
from autoprune.errors import TaskError

# A task's name becomes part of file names (the dense cache, the default run directory).
NAME_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,99}")
MAX_EPOCHS = 10_000  # dense training epochs
MAX_BATCH_SIZE = 65_536
# The declared constraints of a task's training settings.
TRAINING_FIELDS = {
    "epochs": Interval(int, 0, MAX_EPOCHS),
    "batch_size": Interval(int, 1, MAX_BATCH_SIZE),
    "lr": Interval(float, 0, 1, closed="right"),
    "weight_decay": Interval(float, 0, None),
    "split_seed": Interval(int, 0, MAX_SEED, closed="left"),
    "val_fraction": Interval(float, 0, 1, closed="left"),
}


def check_task_name(name) -> str:
    """``name`` if it is a safe file-name slug: letters, digits, ``-``, ``_``, ``.``, no ``..``.

    Example:
        >>> check_task_name("digits-mlp")
        'digits-mlp'
        >>> check_task_name("../evil")
        Traceback (most recent call last):
        ...
        autoprune.errors.TaskError: The 'name' field must be 1-100 letters, digits, '-', '_' or '.' (no '..', not starting with '.' or '-'): it names files and directories. Got '../evil' instead.
    """
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name) or ".." in name:
        raise TaskError(
            "The 'name' field must be 1-100 letters, digits, '-', '_' or '.' (no '..', not "
            f"starting with '.' or '-'): it names files and directories. Got {shorten(name)} instead."
        )
    return name


def check_feature_names(names, example_input: torch.Tensor) -> tuple[str, ...]:
    """``names`` as a tuple if they are strings, one per column of a 2-D ``example_input``.

    Example:
        >>> check_feature_names(["a", "b"], torch.zeros(1, 3))
        Traceback (most recent call last):
        ...
        autoprune.errors.TaskError: The 'feature_names' field must be 3 names, one per input column. Got ['a', 'b'] instead.
    """
    if names is None:
        return ()
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise TaskError(
            "The 'feature_names' field must be a list of strings, one per input column. "
            f"Got {shorten(names)} instead."
        )
    columns = example_input.shape[1] if example_input.dim() == 2 else None
    if names and columns != len(names):
        expected = (
            f"{columns} names" if columns is not None else "empty for inputs that are not 2-D"
        )
        raise TaskError(
            f"The 'feature_names' field must be {expected}, one per input column. "
            f"Got {shorten(list(names))} instead."
        )
    return tuple(names)
