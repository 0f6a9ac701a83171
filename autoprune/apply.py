"""The production path: apply a policy to a checkpoint, save the pruned model, load it back.

Nothing here needs Optuna, pandas or scikit-learn: a service that only runs a
pruned model imports torch, safetensors and PyYAML. :func:`apply_policy` prunes
a copy of a model and returns it with its structured-pruning history; the
pruned model's directory (:func:`save_pruned`, :func:`load_pruned`) lives in
:mod:`autoprune.model_dir`, the output-directory checks in
:mod:`autoprune.out_dir`, the builder allow-list in :mod:`autoprune.builders`;
their names are re-exported here.

Example:
    >>> import tempfile
    >>> from autoprune.tasks.models import DigitsMLP
    >>> from autoprune.policy import Policy
    >>> policy = Policy.uniform(["fc1", "fc2"], 0.5, granularity="structured")
    >>> pruned = apply_policy(DigitsMLP(), policy, example_input=torch.zeros(1, 64))
    >>> pruned.model.fc1.out_features, [entry.unit for entry in pruned.history]
    (64, ['fc1', 'fc2'])
    >>> out = save_pruned(pruned.model, tempfile.mkdtemp() + "/out", policy, history=pruned.history,
    ...                   builder="autoprune.tasks.models:DigitsMLP")
    >>> again = load_pruned(out, example_input=torch.zeros(1, 64))
    >>> bool(torch.equal(again.fc1.weight, pruned.model.fc1.weight))
    True
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from autoprune._echo import shorten
from autoprune.builders import (
    BUILTIN_BUILDERS,
    TRUSTED_BUILDERS_ENV,
    builder_path,
    check_builder_path,
    import_builder,
    trusted_builders,
)
from autoprune.errors import AutopruneError, PolicyError, PruningError
from autoprune.model_dir import (
    MAX_INPUT_ELEMENTS,
    as_document,
    example_from,
    load_error_reason,
    load_pruned,
    save_pruned,
)
from autoprune.out_dir import POLICY_FILE, WEIGHTS_FILE, check_out
from autoprune.policy import Policy
from autoprune.policy_file import PolicyDocument, check_fingerprint, fingerprint
from autoprune.prune import HistoryEntry

DATA_DRIVEN = ("taylor", "obd", "activation")  # criteria that rank weights with a few batches


@dataclass(frozen=True)
class PrunedModel:
    """A pruned model and the structured-pruning history that rebuilds its architecture.

    Save both with ``save_pruned(pruned.model, out, policy, history=pruned.history)``.
    """

    model: nn.Module
    history: list[HistoryEntry]


def check_finite(
    model: nn.Module, *, what: str = "The model", error: type[AutopruneError] = PruningError
) -> None:
    """Raise ``error`` naming the first tensor of ``model`` that holds NaN or infinity.

    Example:
        >>> layer = torch.nn.Linear(2, 2)
        >>> with torch.no_grad(): _ = layer.bias.fill_(float("nan"))
        >>> try:
        ...     check_finite(layer)
        ... except PruningError as exc:
        ...     print(str(exc).split(";")[0])
        The model holds non-finite values (NaN or infinity) in 'bias' (2 of 2)
    """
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise error(
                f"{what} holds non-finite values (NaN or infinity) in '{shorten(name, text=True)}' "
                f"({bad} of {tensor.numel()}); autoprune neither prunes nor exports such weights."
            )


def apply_policy(
    model: nn.Module,
    policy: Policy | PolicyDocument | str | Path,
    *,
    example_input: torch.Tensor,
    task=None,
    check: bool = True,
) -> PrunedModel:
    """A pruned copy of ``model`` as ``policy`` says (no fine-tuning), with its history.

    ``model`` is not changed. All or nothing: the pruning happens on a copy, so a
    policy that fails half-way (say an N:M pattern that no longer divides a layer a
    structured entry shrank) leaves the caller's model exactly as it was. Data-driven
    criteria (taylor, obd, activation) need ``task`` for a few batches of data;
    magnitude, lamp and random do not. With ``task``, BatchNorm is recalibrated
    afterwards when the policy's recipe says so, exactly as ``autoprune apply`` and
    the search do. The model's layers must match the policy's fingerprint, and its
    weights must be finite.
    """
    from autoprune.prune import Calibration, Pruner
    from autoprune.prune.depth import remove_policy_blocks, remove_recorded_blocks
    from autoprune.prune.inputs import select_policy_inputs

    document = as_document(policy)
    model = remove_recorded_blocks(model, document)  # a shallower copy when blocks were removed
    if check and document.fingerprint:
        check_fingerprint(document.fingerprint, model)
    check_finite(model)
    if task is None and any(lp.criterion in DATA_DRIVEN for lp in document.policy.layers.values()):
        raise PolicyError(
            "This policy ranks weights with a data-driven criterion; pass task= to apply it."
        )
    pruned = copy.deepcopy(model)
    calibration = Calibration.from_task(task) if task is not None else Calibration(example_input)
    pruned, policy = remove_policy_blocks(pruned, document.policy, calibration.example_input)
    select_policy_inputs(pruned, policy)
    pruner = Pruner(pruned, policy, calibration=calibration)
    pruner.step()
    if task is not None and document.policy.finetune.recalibrate_bn:
        from autoprune.training import recalibrate_batchnorm

        recalibrate_batchnorm(pruned, task.train_data, seed=document.policy.seed)
        pruner.masks.apply()
    pruned.eval()
    return PrunedModel(pruned, pruner.history)


__all__ = [
    "BUILTIN_BUILDERS",
    "MAX_INPUT_ELEMENTS",
    "POLICY_FILE",
    "TRUSTED_BUILDERS_ENV",
    "WEIGHTS_FILE",
    "PrunedModel",
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
