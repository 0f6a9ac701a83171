"""A pruned model's directory: ``policy.yaml`` and ``model.safetensors``, saved and loaded back.

The weights file stores sparse tensors as bitmask plus values and the
structured-pruning history in its metadata. :func:`load_pruned` rebuilds the
architecture from the model builder and that history, then loads the weights:
no pickle anywhere.

Example:
    >>> import tempfile, torch
    >>> from autoprune.policy import Policy
    >>> from autoprune.prune import HistoryEntry
    >>> from autoprune.tasks.models import DigitsMLP
    >>> model = DigitsMLP()
    >>> with torch.no_grad():
    ...     model.fc2 = torch.nn.Linear(128, 60); model.fc3 = torch.nn.Linear(60, 10)
    >>> removed = HistoryEntry.of("fc2", "channels", range(4), units=64)
    >>> out = save_pruned(model, tempfile.mkdtemp() + "/out", Policy.uniform(["fc1"], 0.0),
    ...                   history=[removed], builder="autoprune.tasks.models:DigitsMLP")
    >>> again = load_pruned(out, example_input=torch.zeros(1, 64))
    >>> again.fc2.out_features, bool(torch.equal(again.fc3.weight, model.fc3.weight))
    (60, True)
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import torch
from torch import nn

from autoprune._echo import shorten
from autoprune._weights import load_into
from autoprune.artifact import decode_state_dict, read_history, serialize_state_dict
from autoprune.builders import import_builder
from autoprune.errors import AutopruneError, PolicyError, PruningError
from autoprune.out_dir import POLICY_FILE, WEIGHTS_FILE, check_out, staging_path
from autoprune.policy import Policy
from autoprune.policy_file import PolicyDocument, check_fingerprint, load_policy, save_policy
from autoprune.prune import HistoryEntry
from autoprune.prune.depth import remove_policy_blocks, remove_recorded_blocks, removed_blocks
from autoprune.prune.inputs import select_policy_inputs

MAX_INPUT_ELEMENTS = 1 << 24  # the largest example input a policy's provenance may ask for


def as_document(policy: Policy | PolicyDocument | str | Path) -> PolicyDocument:
    """``policy`` as a policy document (a path is loaded and validated)."""
    if isinstance(policy, PolicyDocument):
        return policy
    if isinstance(policy, Policy):
        return PolicyDocument(policy)
    return load_policy(policy)


def save_pruned(
    model: nn.Module,
    out_dir: str | Path,
    policy: Policy | PolicyDocument,
    *,
    history: Sequence[HistoryEntry | list] | None = None,
    builder: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``policy.yaml`` and ``model.safetensors`` for a pruned model; returns the directory.

    ``history`` is the structured-pruning history that rebuilds the model's
    architecture (``PrunedModel.history``, ``PruneOutcome.history``; none for a model
    only masked). ``out_dir`` must be new, empty, or a pruned-model directory autoprune
    wrote (only those two files in it); with ``overwrite``, any directory: only those
    two files are replaced, nothing else in it is touched (see :func:`check_out`).
    Both files are written to ``<out>.partial/`` first; a new ``out`` is that directory
    renamed, an existing one loses its old policy first and gets the new one last, so
    ``out`` never holds a policy and weights that do not belong together. ``builder``
    (``module:qualname``) is recorded in the provenance, replacing any there.
    """
    from autoprune._io import write_bytes

    out = check_out(out_dir, overwrite=overwrite)
    staging = staging_path(out)
    if staging.is_dir():  # a leftover of an interrupted save: only autoprune's files (checked)
        for entry in staging.iterdir():
            entry.unlink()
    document = copy.deepcopy(as_document(policy))
    if builder:
        document.provenance["builder"] = builder
    history = list(history or [])
    document.results["structure"] = {"history_length": len(history)}
    save_policy(staging / POLICY_FILE, document)
    write_bytes(staging / WEIGHTS_FILE, serialize_state_dict(model.state_dict(), history=history))
    if not out.exists():
        staging.rename(out)
        return out
    (out / POLICY_FILE).unlink(missing_ok=True)  # from here until the last step, out has no policy
    os.replace(staging / WEIGHTS_FILE, out / WEIGHTS_FILE)
    os.replace(staging / POLICY_FILE, out / POLICY_FILE)
    staging.rmdir()
    return out


def load_pruned(
    directory: str | Path,
    *,
    build_model: Callable[[], nn.Module] | None = None,
    example_input: torch.Tensor | None = None,
    trusted_builders: Iterable[str] | str = (),
) -> nn.Module:
    """Rebuild a pruned model from its directory: builder + structured history + safetensors weights.

    ``build_model`` defaults to the builder named in the policy's provenance
    (``module:qualname``), which is imported only when it is trusted: a builder of
    a built-in task (:data:`~autoprune.builders.BUILTIN_BUILDERS`), one of
    ``trusted_builders``, or one of the comma-separated names in
    ``$AUTOPRUNE_TRUSTED_BUILDERS``; any other is refused before anything is
    imported. ``example_input`` is needed to replay structured pruning (the
    provenance's ``input_shape`` is used when it is not given). The weights file's
    metadata is checked against the rebuilt model before anything it describes is
    allocated or replayed. Blocks the policy records as removed (``results.depth``,
    see :mod:`autoprune.prune.depth`) are removed from the built model first.
    """
    directory = Path(directory)
    document = load_policy(directory / POLICY_FILE)
    if build_model is None:
        path = document.provenance.get("builder")
        if not path:
            raise AutopruneError(
                f"{directory / POLICY_FILE} names no model builder; pass build_model=."
            )
        build_model = import_builder(path, trusted=trusted_builders)
    weights = directory / WEIGHTS_FILE
    tensors, metadata = _read_weights(directory, weights)
    model = build_model()
    if removed_blocks(document):  # depth pruning: the recorded blocks go first
        model = remove_recorded_blocks(model, document, copy=False)
    if document.fingerprint:
        check_fingerprint(document.fingerprint, model)
    example = example_input
    if document.policy.blocks:  # depth pruning chosen with the widths: blocks go first
        example = example if example is not None else example_from(document)
        remove_policy_blocks(model, document.policy, example, check=False)
    select_policy_inputs(model, document.policy)  # the input features the policy keeps
    history = read_history(metadata, model, source=str(weights))
    if history:
        example = example if example is not None else example_from(document)
        _replay(model, example, history, weights)
    expected = {name: tensor.shape for name, tensor in model.state_dict().items()}
    state = decode_state_dict(tensors, metadata, expected=expected, source=str(weights))
    try:
        load_into(model, state)
    except RuntimeError as exc:
        raise AutopruneError(
            f"The weights in {weights} do not fit the rebuilt model: {load_error_reason(exc)}"
        ) from exc
    model.eval()
    return model


def _replay(
    model: nn.Module, example: torch.Tensor, history: list[HistoryEntry], weights: Path
) -> None:
    from autoprune.prune import replay_history

    try:
        replay_history(model, example, history)
    except (PruningError, KeyError, ValueError, IndexError, TypeError, RuntimeError) as exc:
        raise AutopruneError(
            f"{weights}: the structured-pruning history does not fit the rebuilt model "
            f"(edited or damaged?): {type(exc).__name__}: {shorten(exc, text=True)}"
        ) from exc


def _read_weights(directory: Path, weights: Path) -> tuple[dict[str, torch.Tensor], dict]:
    from safetensors import SafetensorError, safe_open

    if not weights.is_file():
        raise AutopruneError(f"{directory} has no {WEIGHTS_FILE}.")
    try:
        with safe_open(str(weights), framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}, f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise AutopruneError(
            f"{weights} is not a readable safetensors file (truncated?): {shorten(exc, text=True)}"
        ) from exc


def load_error_reason(exc: BaseException, limit: int = 200) -> str:
    """Why ``load_state_dict`` refused, on one line: missing/unexpected keys, size mismatches.

    Example:
        >>> try:
        ...     torch.nn.Linear(2, 2).load_state_dict({"weight": torch.zeros(2, 2)})
        ... except RuntimeError as exc:
        ...     load_error_reason(exc)
        'Missing key(s) in state_dict: "bias".'
    """
    lines = [" ".join(line.split()) for line in str(exc).splitlines()]
    reason = " ".join(line for line in lines[1:] if line) or " ".join(lines) or type(exc).__name__
    return shorten(reason, limit, text=True)


def example_from(document: PolicyDocument) -> torch.Tensor:
    """A zero input of the shape and dtype recorded in the policy's provenance (to replay structure)."""
    shape = document.provenance.get("input_shape")
    if not shape:
        raise AutopruneError(
            "Replaying structured pruning needs example_input= (or 'input_shape' in the provenance)."
        )
    if not (
        isinstance(shape, list)
        and len(shape) <= 8
        and all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)
        and math.prod(shape) <= MAX_INPUT_ELEMENTS
    ):
        raise PolicyError(
            "The provenance's 'input_shape' must be a list of at most 8 positive integers, "
            f"{MAX_INPUT_ELEMENTS} elements in all. Got {shorten(shape, text=True)} instead."
        )
    dtype = getattr(torch, str(document.provenance.get("input_dtype", "float32")), torch.float32)
    return torch.zeros(*shape, dtype=dtype if isinstance(dtype, torch.dtype) else torch.float32)
