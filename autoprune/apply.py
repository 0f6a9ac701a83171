"""The production path: apply a policy to a checkpoint, save the pruned model, load it back.

Nothing here needs Optuna, pandas or scikit-learn: a service that only runs a
pruned model imports torch, safetensors and PyYAML. A pruned model directory
holds ``policy.yaml`` (the policy file) and ``model.safetensors`` (the
weights, sparse tensors as bitmask plus values; the structured-pruning history
in the file's metadata). :func:`load_pruned` rebuilds the architecture from
the model builder and that history, then loads the weights: no pickle anywhere.

Example:
    >>> import tempfile
    >>> from autoprune.tasks.models import DigitsMLP
    >>> from autoprune.policy import Policy
    >>> model = apply_policy(DigitsMLP(), Policy.uniform(["fc1"], 0.5), example_input=torch.zeros(1, 64))
    >>> out = tempfile.mkdtemp()
    >>> _ = save_pruned(model, out, Policy.uniform(["fc1"], 0.5), builder="autoprune.tasks.models:DigitsMLP")
    >>> again = load_pruned(out, example_input=torch.zeros(1, 64))
    >>> bool(torch.equal(again.fc1.weight, model.fc1.weight))
    True
"""

from __future__ import annotations

import copy
import importlib
import json
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from autoprune.artifact import HISTORY_KEY
from autoprune.errors import AutopruneError, PolicyError
from autoprune.policy import Policy
from autoprune.policy_file import (
    PolicyDocument,
    check_fingerprint,
    fingerprint,
    load_policy,
    save_policy,
)

WEIGHTS_FILE = "model.safetensors"
POLICY_FILE = "policy.yaml"


def builder_path(build_model: Callable) -> str | None:
    """``module:qualname`` of an importable model builder (a class or function), else None."""
    module, name = (
        getattr(build_model, "__module__", None),
        getattr(build_model, "__qualname__", ""),
    )
    if not module or "<" in name or module == "__main__":
        return None
    return f"{module}:{name}"


def import_builder(path: str) -> Callable[[], nn.Module]:
    """The callable named by ``module:qualname``."""
    module_name, _, qualname = path.partition(":")
    try:
        target = importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise AutopruneError(f"Cannot import the model builder {path!r}: {exc}") from exc
    return target


def apply_policy(
    model: nn.Module,
    policy: Policy | PolicyDocument | str | Path,
    *,
    example_input: torch.Tensor,
    task=None,
    check: bool = True,
) -> nn.Module:
    """Return a pruned copy of ``model`` as ``policy`` says (no fine-tuning); ``model`` is not changed.

    All or nothing: the pruning happens on a copy, so a policy that fails half-way
    (say an N:M pattern that no longer divides a layer a structured entry shrank)
    leaves the caller's model exactly as it was. Data-driven criteria (taylor,
    obd, activation) need ``task`` for a few batches of data; magnitude, lamp and
    random do not. With ``task``, BatchNorm is recalibrated afterwards when the
    policy's recipe says so, exactly as ``autoprune apply`` and the search do.
    The model's layers must match the policy's fingerprint.
    """
    document = _document(policy)
    if check and document.fingerprint:
        check_fingerprint(document.fingerprint, model)
    needs_data = any(
        lp.criterion in ("taylor", "obd", "activation") for lp in document.policy.layers.values()
    )
    if needs_data and task is None:
        raise PolicyError(
            "This policy ranks weights with a data-driven criterion; pass task= to apply it."
        )
    from autoprune.prune import Pruner

    pruned = copy.deepcopy(model)
    pruner = Pruner(
        pruned, document.policy, task if task is not None else _DataFreeTask(example_input)
    )
    pruner.step()
    if task is not None and document.policy.finetune.recalibrate_bn:
        from autoprune.training import recalibrate_batchnorm

        recalibrate_batchnorm(pruned, task.train_data, seed=document.policy.seed)
        pruner.masks.apply()
    pruned.eval()
    pruned._autoprune_history = pruner.history  # kept for save_pruned
    return pruned


class _DataFreeTask:
    """Enough of a Task for criteria that need no data."""

    def __init__(self, example_input: torch.Tensor) -> None:
        self.example_input = example_input


def _document(policy) -> PolicyDocument:
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
    history: list | None = None,
    builder: str | None = None,
) -> Path:
    """Write ``policy.yaml`` and ``model.safetensors`` for a pruned model; returns the directory.

    Both files are written to ``<out>.partial/`` first and the directory is renamed
    into place, so ``out`` never holds a policy and weights that do not belong
    together. An existing ``out`` is replaced.
    """
    import shutil

    from autoprune._io import write_bytes
    from autoprune.artifact import serialize_state_dict

    out = Path(out_dir)
    staging = out.with_name(out.name + ".partial")
    if staging.exists():
        shutil.rmtree(staging)
    document = copy.deepcopy(_document(policy))
    if builder:
        document.provenance.setdefault("builder", builder)
    history = history if history is not None else getattr(model, "_autoprune_history", [])
    document.results["structure"] = {"history_length": len(history)}
    save_policy(staging / POLICY_FILE, document)
    data = serialize_state_dict(model.state_dict(), history=history)
    write_bytes(staging / WEIGHTS_FILE, data)
    if out.exists():
        old = out.with_name(out.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        out.rename(old)
        staging.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staging.rename(out)
    return out


def load_pruned(
    directory: str | Path,
    *,
    build_model: Callable[[], nn.Module] | None = None,
    example_input: torch.Tensor | None = None,
) -> nn.Module:
    """Rebuild a pruned model from its directory: builder + structured history + safetensors weights.

    ``build_model`` defaults to the builder named in the policy's provenance
    (``module:qualname``); ``example_input`` is needed to replay structured
    pruning (the provenance's ``input_shape`` is used when it is not given).
    """
    from safetensors import SafetensorError, safe_open

    from autoprune.artifact import decode_state_dict

    directory = Path(directory)
    document = load_policy(directory / POLICY_FILE)
    weights = directory / WEIGHTS_FILE
    if not weights.is_file():
        raise AutopruneError(f"{directory} has no {WEIGHTS_FILE}.")
    try:
        with safe_open(str(weights), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise AutopruneError(
            f"{weights} is not a readable safetensors file (truncated?): {exc}"
        ) from exc
    if build_model is None:
        path = document.provenance.get("builder")
        if not path:
            raise AutopruneError(
                f"{directory / POLICY_FILE} names no model builder; pass build_model=."
            )
        build_model = import_builder(path)
    model = build_model()
    if document.fingerprint:
        check_fingerprint(document.fingerprint, model)
    try:
        history = json.loads(metadata.get(HISTORY_KEY, "[]"))
        if history:
            from autoprune.prune import replay_history

            replay_history(
                model,
                example_input if example_input is not None else example_from(document),
                history,
            )
        state = decode_state_dict(tensors, metadata)
    except (
        KeyError,
        ValueError,
        IndexError,
        TypeError,
        RuntimeError,
    ) as exc:  # an edited or damaged file
        raise AutopruneError(
            f"{weights} does not describe a model this builder can rebuild (edited or damaged?): "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        ) from exc
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise AutopruneError(
            f"The weights in {weights} do not fit the rebuilt model: {str(exc).splitlines()[0]}"
        ) from exc
    model.eval()
    return model


def example_from(document: PolicyDocument) -> torch.Tensor:
    """A zero input of the shape and dtype recorded in the policy's provenance (to replay structure)."""
    shape = document.provenance.get("input_shape")
    if not shape:
        raise AutopruneError(
            "Replaying structured pruning needs example_input= (or 'input_shape' in the provenance)."
        )
    dtype = getattr(torch, str(document.provenance.get("input_dtype", "float32")), torch.float32)
    return torch.zeros(*shape, dtype=dtype if isinstance(dtype, torch.dtype) else torch.float32)


__all__ = [
    "apply_policy",
    "example_from",
    "builder_path",
    "fingerprint",
    "import_builder",
    "load_pruned",
    "save_pruned",
]
