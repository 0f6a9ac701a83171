"""Input features as prunable units: the columns of a model's first linear layer.

Removing column ``j`` of the first ``nn.Linear`` removes input feature ``j``: the
pruned model asks for fewer inputs. :func:`prune_inputs` keeps ``k`` features (or
the indices given), ranked by the L2 norm of their weight column (``"l2"``) or, with
calibration data, by ``mean |x_j| * ||W[:, j]||`` (``"activation"``), and shrinks the
layer physically. Feed the pruned model the kept columns only, in their order:
``x[:, result.kept]`` (or ``result.select(x)``).

A policy keeps input features with its ``inputs`` field (the search chooses how
many, with ``inputs: true`` in its space): :func:`select_policy_inputs` narrows the
first layer to a :class:`SelectedInputsLinear`, which still takes the whole input
and reads the kept columns only, so the model runs on its task's data as before;
:func:`reduce_inputs` then makes it take ``x[:, kept]`` alone.

The removal is recorded as a structured-pruning history entry, so
``save_pruned(result.model, out, result.document(), history=result.history)`` and
``load_pruned(out)`` rebuild the narrower layer; the kept indices and names are
written to the policy file's ``results.inputs`` (:func:`kept_inputs` reads them back).

Example:
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    >>> with torch.no_grad(): _ = model[0].weight.copy_(torch.tensor([[1., 0, 3, 0]] * 3))
    >>> result = prune_inputs(model, 2, feature_names=["a", "b", "c", "d"])
    >>> result.kept, result.names, result.model[0].in_features
    ((0, 2), ('a', 'c'), 2)
    >>> result.model(result.select(torch.ones(5, 4))).shape
    torch.Size([5, 2])
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from autoprune._echo import shorten
from autoprune._validation import check_choice
from autoprune.errors import PolicyError, PruningError
from autoprune.prune._inputs_layer import (
    SelectedInputsLinear,
    first_linear,
    keep_columns,
    reduce_inputs,
    select_columns,
)
from autoprune.prune._inputs_scores import check_names, input_scores, kept_indices
from autoprune.prune.units._history import HistoryEntry, as_history

INPUT_CRITERIA = ("l2", "activation")
RESULTS_KEY = "inputs"  # where a policy document's results hold the kept features

__all__ = [
    "INPUT_CRITERIA",
    "InputPruning",
    "SelectedInputsLinear",
    "input_record",
    "kept_inputs",
    "prune_inputs",
    "rank_inputs",
    "reduce_inputs",
    "select_policy_inputs",
]


@dataclass(frozen=True)
class InputPruning:
    """A model with fewer input features, which ones it kept, and the history that rebuilds it.

    ``kept`` are indices of the original input columns, ascending: the pruned
    model takes ``x[:, kept]``. ``names`` are their names (empty when none were
    given); ``scores`` one per original feature (higher: more important).
    """

    model: nn.Module
    layer: str
    n_features: int
    kept: tuple[int, ...]
    names: tuple[str, ...] = ()
    scores: tuple[float, ...] = ()
    history: list[HistoryEntry] = field(default_factory=list)

    def select(self, x: torch.Tensor) -> torch.Tensor:
        """The columns of ``x`` (N, n_features) the pruned model takes: ``x[:, kept]``."""
        index = torch.as_tensor(self.kept, dtype=torch.long, device=x.device)
        return x.index_select(x.dim() - 1, index)

    def summary(self) -> str:
        """One line: how many features were kept, and which (by name when known)."""
        shown = self.names or tuple(str(i) for i in self.kept)
        return f"Kept {len(self.kept)} of {self.n_features} input features: {', '.join(shown)}."

    def to_dict(self) -> dict:
        """What a policy document's ``results.inputs`` holds (plain data)."""
        return {
            "layer": self.layer,
            "features": self.n_features,
            "kept": list(self.kept),
            "names": list(self.names),
        }

    def document(self, policy=None):
        """A policy document recording the kept features, for :func:`~autoprune.apply.save_pruned`.

        ``policy`` (a Policy or PolicyDocument; default: a policy that prunes no weight
        of the first layer) is copied;
        its ``results.inputs`` and the provenance's ``input_shape`` (the full input,
        needed to replay the history on a freshly built model) are set.
        """
        from autoprune.model_dir import as_document
        from autoprune.policy import Policy

        document = copy.deepcopy(
            as_document(policy if policy is not None else Policy.uniform([self.layer], 0.0))
        )
        document.results[RESULTS_KEY] = self.to_dict()
        document.provenance["input_shape"] = [1, self.n_features]
        return document


def prune_inputs(
    model: nn.Module,
    keep: int | Sequence[int],
    *,
    criterion: str = "l2",
    data=None,
    feature_names: Sequence[str] | None = None,
    layer: str | None = None,
    history: Sequence[HistoryEntry | list] = (),
) -> InputPruning:
    """A copy of ``model`` that takes only ``keep`` input features (``model`` is not changed).

    ``keep`` is a number of features (the best by ``criterion``) or a list of the
    feature indices to keep. ``model``'s first layer (``layer``: the first prunable
    layer by default) must be an ``nn.Linear`` that reads the model's input.
    ``criterion="activation"`` needs ``data``: inputs (N, n_features), an ``(X, y)``
    pair or a Dataset of such pairs. ``history`` is the model's structured-pruning
    history so far; the returned history is it plus the removed inputs. Feed the
    pruned model ``x[:, result.kept]``.
    """
    check_choice("criterion", criterion, INPUT_CRITERIA)
    name, first = first_linear(model, layer)
    history = as_history(history)
    if any(entry.unit == name and entry.kind == "in_channels" for entry in history):
        raise PruningError(
            f"The inputs of layer '{name}' were pruned already; prune the dense model once, "
            "with every feature to keep."
        )
    n = first.in_features
    names = check_names(feature_names, n)
    scores = input_scores(first, criterion, data)
    kept = kept_indices(keep, scores)
    pruned = copy.deepcopy(model)
    keep_columns(dict(pruned.named_modules())[name], kept)
    removed = sorted(set(range(n)) - set(kept))
    entry = HistoryEntry.of(name, "in_channels", removed, units=n)
    return InputPruning(
        model=pruned,
        layer=name,
        n_features=n,
        kept=tuple(kept),
        names=tuple(names[i] for i in kept) if names else (),
        scores=tuple(float(s) for s in scores),
        history=[*history, entry] if removed else history,
    )


def select_policy_inputs(model: nn.Module, policy) -> nn.Module:
    """``model``, in place, reading only the input features ``policy.inputs`` keeps.

    The first layer (an ``nn.Linear`` reading the model's input) becomes a
    :class:`SelectedInputsLinear`; ``model`` is returned unchanged when the policy
    keeps every feature (``inputs`` is None).

    Example:
        >>> import torch
        >>> from autoprune.policy import Policy
        >>> from autoprune.tasks.models import DigitsMLP
        >>> model = select_policy_inputs(DigitsMLP(), Policy.uniform(["fc2"], 0.5, inputs=[0, 9]))
        >>> model.fc1.in_features, model(torch.zeros(3, 64)).shape
        (2, torch.Size([3, 10]))
    """
    if policy.inputs is None:
        return model
    name, first = first_linear(model, None)
    outside = [i for i in policy.inputs if i >= first.in_features]
    if outside:
        raise PolicyError(
            f"The 'inputs' field keeps feature(s) {shorten(outside)}, but the model's first layer "
            f"'{name}' reads {first.in_features} features (indices 0 to {first.in_features - 1})."
        )
    select_columns(model, name, policy.inputs)
    return model


def rank_inputs(model: nn.Module, data, *, items: int = 2048) -> tuple[int, ...]:
    """The input features of ``model``, most important first by ``mean |x_j| * ||W[:, j]||``.

    ``data`` is a Dataset of ``(x, y)`` pairs (the first ``items`` are read) or
    inputs (N, n_features); ``W`` the first layer's weight (an ``nn.Linear``
    reading the model's input). Ties keep the feature order.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> model = nn.Sequential(nn.Linear(3, 2))
        >>> with torch.no_grad(): _ = model[0].weight.copy_(torch.tensor([[1., 5, 1], [1, 0, 1]]))
        >>> rank_inputs(model, torch.tensor([[1., 1, 3], [1, 1, 3]]))
        (1, 2, 0)
    """
    _, first = first_linear(model, None)
    if isinstance(data, torch.utils.data.Dataset) and len(data) > items:
        data = torch.utils.data.Subset(data, range(items))
    scores = input_scores(first, "activation", data)
    return tuple(torch.sort(-scores, stable=True).indices.tolist())


def input_record(model: nn.Module, feature_names: Sequence[str] = ()) -> dict:
    """What a policy document's ``results.inputs`` holds for a model with fewer input features.

    Empty when the model reads every input (no :class:`SelectedInputsLinear`).

    Example:
        >>> from torch import nn
        >>> model = nn.Sequential(nn.Linear(3, 2))
        >>> select_columns(model, "0", [0, 2])
        >>> input_record(model, ["a", "b", "c"])
        {'layer': '0', 'features': 3, 'kept': [0, 2], 'names': ['a', 'c']}
    """
    for name, module in model.named_modules():
        if isinstance(module, SelectedInputsLinear):
            kept = module.kept.tolist()
            names = check_names(list(feature_names), module.n_inputs)
            return {
                "layer": name,
                "features": module.n_inputs,
                "kept": kept,
                "names": [names[i] for i in kept] if names else [],
            }
    return {}


def kept_inputs(source) -> dict:
    """The kept input features a pruned model's policy records: ``{"kept": [...], "names": [...], ...}``.

    ``source`` is a pruned model's directory, its policy file, or a PolicyDocument.
    Raises PolicyError when the policy records no input pruning.
    """
    from autoprune.model_dir import as_document
    from autoprune.out_dir import POLICY_FILE

    if isinstance(source, (str, Path)) and Path(source).is_dir():
        source = Path(source) / POLICY_FILE
    document = as_document(source)
    recorded = document.results.get(RESULTS_KEY)
    kept = recorded.get("kept") if isinstance(recorded, dict) else None
    features = recorded.get("features") if isinstance(recorded, dict) else None
    if not (
        isinstance(features, int)
        and isinstance(kept, list)
        and kept
        and all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < features for i in kept)
    ):
        raise PolicyError(
            f"results.{RESULTS_KEY}: must hold 'features' and 'kept' (the input feature indices the "
            f"pruned model takes). Got {shorten(recorded)} instead."
        )
    return dict(recorded)
