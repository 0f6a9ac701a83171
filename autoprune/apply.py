"""The production path: apply a policy to a checkpoint, save the pruned model, load it back.

Nothing here needs Optuna, pandas or scikit-learn: a service that only runs a
pruned model imports torch, safetensors and PyYAML. A pruned model directory
holds ``policy.yaml`` (the policy file) and ``model.safetensors`` (the
weights, sparse tensors as bitmask plus values; the structured-pruning history
in the file's metadata). :func:`load_pruned` rebuilds the architecture from
the model builder and that history, then loads the weights: no pickle anywhere.

A policy file alone never makes autoprune import code: the builder it names is
used only when it is one of :data:`BUILTIN_BUILDERS` or on the caller's
allow-list (``trusted_builders=`` or ``$AUTOPRUNE_TRUSTED_BUILDERS``); otherwise
the caller passes ``build_model=``. :func:`save_pruned` writes only into a new
directory, an empty one or one it wrote before, and replaces only its own files.

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
import math
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from torch import nn

from autoprune.errors import AutopruneError, PolicyError, PruningError
from autoprune.policy import Policy, printable
from autoprune.policy_file import (
    PolicyDocument,
    check_fingerprint,
    fingerprint,
    load_policy,
    save_policy,
)

WEIGHTS_FILE = "model.safetensors"
POLICY_FILE = "policy.yaml"
# The model builders of autoprune's built-in tasks: the builders a policy file may name on its own.
BUILTIN_BUILDERS = (
    "autoprune.tasks.models:DigitsMLP",
    "autoprune.tasks.models:FashionCNN",
    "autoprune.tasks.models:FashionResNet",
    "autoprune.tasks.minilm:SentenceEncoder",
)
TRUSTED_BUILDERS_ENV = "AUTOPRUNE_TRUSTED_BUILDERS"  # more builders, comma-separated
MAX_INPUT_ELEMENTS = 1 << 24  # the largest example input a policy's provenance may ask for


def _shown(value, limit: int = 200) -> str:
    """``value`` as printable text of at most ``limit`` characters, for a one-line message."""
    text = printable(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
            f"'autoprune.tasks.models:DigitsMLP'). Got {_shown(repr(path))} instead."
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
            f"The policy names the model builder '{_shown(path)}', which is not a trusted builder; "
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
            f"Cannot import the model builder '{_shown(path)}': {_shown(exc)}"
        ) from exc
    return target


def check_finite(
    model: nn.Module, *, what: str = "The model", error: type[AutopruneError] = PruningError
) -> None:
    """Raise ``error`` naming the first tensor of ``model`` that holds NaN or infinity."""
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise error(
                f"{what} holds non-finite values (NaN or infinity) in '{_shown(name)}' "
                f"({bad} of {tensor.numel()}); autoprune neither prunes nor exports such weights."
            )


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
    The model's layers must match the policy's fingerprint, and its weights must be finite.
    """
    document = _document(policy)
    if check and document.fingerprint:
        check_fingerprint(document.fingerprint, model)
    check_finite(model)
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


def _is_ours(entry: Path, names: tuple[str, ...] = (POLICY_FILE, WEIGHTS_FILE)) -> bool:
    """A plain file of ``names`` (save_pruned's: the policy, the weights) or a temporary file of its atomic write."""
    name = entry.name
    return (
        entry.is_file()
        and not entry.is_symlink()
        and (
            name in names or any(name.startswith(f".{f}.") and name.endswith(".tmp") for f in names)
        )
    )


def _foreign(directory: Path, names: tuple[str, ...] = (POLICY_FILE, WEIGHTS_FILE)) -> list[str]:
    """Names of the entries of ``directory`` that are not ``names`` or their temporaries, sorted."""
    return sorted(entry.name for entry in directory.iterdir() if not _is_ours(entry, names))


def _listed(names: list[str]) -> str:
    shown = ", ".join(_shown(name, 60) for name in names[:3])
    return shown + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def check_out(
    out_dir: str | Path,
    *,
    overwrite: bool = False,
    names: tuple[str, ...] = (POLICY_FILE, WEIGHTS_FILE),
    staging: bool = True,
    writer: str = "autoprune",
) -> Path:
    """``out_dir`` as a Path if :func:`save_pruned` may write there, else AutopruneError saying why.

    Allowed: a path that does not exist, an empty directory, or a directory holding
    only a pruned model's ``policy.yaml`` and ``model.safetensors``; with ``overwrite``,
    any directory (only those two files are replaced). A file or link is never
    replaced, and the staging directory ``<out>.partial`` must hold nothing else.
    Another writer (``writer``, e.g. export) passes the ``names`` of its files and
    ``staging=False`` when it writes straight into ``out_dir``.
    """
    out = Path(out_dir)
    paths = [(out, "output")] + ([(_staging(out), "staging")] if staging else [])
    for path, role in paths:
        if path.is_symlink() or (path.exists() and not path.is_dir()):
            raise AutopruneError(
                f"The {role} path {_shown(path)} exists and is not a directory; autoprune never "
                "replaces it. Choose another --out."
            )
    foreign = _foreign(out, names) if out.is_dir() else []
    if foreign and not overwrite:
        written = " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)
        raise AutopruneError(
            f"The output directory {_shown(out)} already holds files {writer} did not write "
            f"({_listed(foreign)}); pass --overwrite (overwrite=True) to write {written} "
            "into it, leaving the other files, or choose another --out."
        )
    for name in names:
        if name in foreign and ((out / name).is_symlink() or not (out / name).is_file()):
            raise AutopruneError(
                f"{_shown(out / name)} is not a file; autoprune never replaces it. Choose another --out."
            )
    if not staging:
        return out
    partial = _staging(out)
    foreign = _foreign(partial) if partial.is_dir() else []
    if foreign:
        raise AutopruneError(
            f"The staging directory {_shown(partial)} holds files autoprune did not write "
            f"({_listed(foreign)}); move them away or choose another --out."
        )
    return out


def _staging(out: Path) -> Path:
    return out.with_name(out.name + ".partial")


def save_pruned(
    model: nn.Module,
    out_dir: str | Path,
    policy: Policy | PolicyDocument,
    *,
    history: list | None = None,
    builder: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``policy.yaml`` and ``model.safetensors`` for a pruned model; returns the directory.

    ``out_dir`` must be new, empty, or a pruned-model directory autoprune wrote (only
    those two files in it); with ``overwrite``, any directory: only those two files
    are replaced, nothing else in it is touched (see :func:`check_out`). Both files
    are written to ``<out>.partial/`` first; a new ``out`` is that directory renamed,
    an existing one loses its old policy first and gets the new one last, so ``out``
    never holds a policy and weights that do not belong together. ``builder``
    (``module:qualname``) is recorded in the provenance, replacing any there.
    """
    from autoprune._io import write_bytes
    from autoprune.artifact import serialize_state_dict

    out = check_out(out_dir, overwrite=overwrite)
    staging = _staging(out)
    if staging.is_dir():  # a leftover of an interrupted save: only autoprune's files (checked)
        for entry in staging.iterdir():
            entry.unlink()
    document = copy.deepcopy(_document(policy))
    if builder:
        document.provenance["builder"] = builder
    history = history if history is not None else getattr(model, "_autoprune_history", [])
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
    a built-in task (:data:`BUILTIN_BUILDERS`), one of ``trusted_builders``, or one
    of the comma-separated names in ``$AUTOPRUNE_TRUSTED_BUILDERS``; any other is
    refused before anything is imported. ``example_input`` is needed to replay
    structured pruning (the provenance's ``input_shape`` is used when it is not
    given). The weights file's metadata is checked against the rebuilt model before
    anything it describes is allocated or replayed.
    """
    from autoprune.artifact import decode_state_dict, read_history

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
    if document.fingerprint:
        check_fingerprint(document.fingerprint, model)
    history = read_history(metadata, model, source=str(weights))
    if history:
        from autoprune.prune import replay_history

        example = example_input if example_input is not None else example_from(document)
        try:
            replay_history(model, example, history)
        except (PruningError, KeyError, ValueError, IndexError, TypeError, RuntimeError) as exc:
            raise AutopruneError(
                f"{weights}: the structured-pruning history does not fit the rebuilt model "
                f"(edited or damaged?): {type(exc).__name__}: {_shown(exc)}"
            ) from exc
    expected = {name: tensor.shape for name, tensor in model.state_dict().items()}
    state = decode_state_dict(tensors, metadata, expected=expected, source=str(weights))
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise AutopruneError(
            f"The weights in {weights} do not fit the rebuilt model: {load_error_reason(exc)}"
        ) from exc
    model.eval()
    return model


def _read_weights(directory: Path, weights: Path) -> tuple[dict[str, torch.Tensor], dict]:
    from safetensors import SafetensorError, safe_open

    if not weights.is_file():
        raise AutopruneError(f"{directory} has no {WEIGHTS_FILE}.")
    try:
        with safe_open(str(weights), framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}, f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise AutopruneError(
            f"{weights} is not a readable safetensors file (truncated?): {_shown(exc)}"
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
    return _shown(reason, limit)


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
            f"{MAX_INPUT_ELEMENTS} elements in all. Got {_shown(shape)} instead."
        )
    dtype = getattr(torch, str(document.provenance.get("input_dtype", "float32")), torch.float32)
    return torch.zeros(*shape, dtype=dtype if isinstance(dtype, torch.dtype) else torch.float32)


__all__ = [
    "BUILTIN_BUILDERS",
    "apply_policy",
    "builder_path",
    "check_builder_path",
    "check_finite",
    "check_out",
    "example_from",
    "fingerprint",
    "import_builder",
    "load_error_reason",
    "load_pruned",
    "save_pruned",
    "trusted_builders",
]
