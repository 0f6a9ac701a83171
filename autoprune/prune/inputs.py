"""Input features as prunable units: the columns of a model's first linear layer.

Removing column ``j`` of the first ``nn.Linear`` removes input feature ``j``: the
pruned model asks for fewer inputs. :func:`prune_inputs` keeps ``k`` features (or
the indices given), ranked by the L2 norm of their weight column (``"l2"``) or, with
calibration data, by ``mean |x_j| * ||W[:, j]||`` (``"activation"``), and shrinks the
layer physically. Feed the pruned model the kept columns only, in their order:
``x[:, result.kept]`` (or ``result.select(x)``).

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
from autoprune.errors import ParameterError, PolicyError, PruningError
from autoprune.introspect import prunable_layers
from autoprune.prune.units._history import HistoryEntry, as_history

INPUT_CRITERIA = ("l2", "activation")
RESULTS_KEY = "inputs"  # where a policy document's results hold the kept features


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
    name, first = _first_linear(model, layer)
    history = as_history(history)
    if any(entry.unit == name and entry.kind == "in_channels" for entry in history):
        raise PruningError(
            f"The inputs of layer '{name}' were pruned already; prune the dense model once, "
            "with every feature to keep."
        )
    n = first.in_features
    names = _check_names(feature_names, n)
    scores = _scores(first, criterion, data)
    kept = _kept(keep, scores)
    pruned = copy.deepcopy(model)
    _keep_columns(dict(pruned.named_modules())[name], kept)
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


def _first_linear(model: nn.Module, layer: str | None) -> tuple[str, nn.Linear]:
    """The name and module of the layer that reads the model's input; it must be an ``nn.Linear``."""
    layers = prunable_layers(model)
    if not layers:
        raise PruningError("The model has no prunable layer, so no input features to prune.")
    if layer is None:
        layer = next(iter(layers))
    elif layer not in layers:
        raise ParameterError(
            f"The 'layer' parameter must name a prunable layer of the model ({', '.join(layers)}). "
            f"Got {shorten(layer)} instead."
        )
    module = layers[layer]
    if not isinstance(module, nn.Linear):
        raise PruningError(
            f"Input features are the columns of a first nn.Linear layer; the first layer "
            f"'{layer}' is {type(module).__name__}."
        )
    called = _first_called(model, layers, layer)
    if called != layer:
        raise PruningError(
            f"Layer '{layer}' does not read the model's input: on inputs (N, {module.in_features}) "
            f"the first layer to run is '{called}'. Pass layer= the first layer."
        )
    return layer, module


def _first_called(model: nn.Module, layers: dict[str, nn.Module], layer: str) -> str | None:
    """The first of ``layers`` that runs on a zero input as wide as ``layer``'s inputs."""
    width = layers[layer].in_features
    order: list[str] = []
    hooks = [
        module.register_forward_pre_hook(lambda *_, name=name: order.append(name))
        for name, module in layers.items()
    ]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, width, device=layers[next(iter(layers))].weight.device))
    except Exception as exc:  # user model: say why, in one line
        raise PruningError(
            f"Layer '{layer}' does not read the model's input: the model does not run on inputs "
            f"(N, {width}) ({type(exc).__name__}: {shorten(exc, text=True)}). Pass layer= the first layer."
        ) from exc
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return order[0] if order else None


def _check_names(names: Sequence[str] | None, n: int) -> tuple[str, ...]:
    if names is None or (isinstance(names, (list, tuple)) and not names):
        return ()
    if (
        not isinstance(names, (list, tuple))
        or len(names) != n
        or not all(isinstance(x, str) for x in names)
    ):
        raise ParameterError(
            f"The 'feature_names' parameter must be {n} strings, one per input feature. "
            f"Got {shorten(names)} instead."
        )
    return tuple(names)


def _scores(layer: nn.Linear, criterion: str, data) -> torch.Tensor:
    """One score per input feature: its weight column's L2 norm, times mean |x_j| for "activation"."""
    norms = layer.weight.detach().double().norm(dim=0).cpu()
    if criterion == "l2":
        return norms
    if data is None:
        raise ParameterError(
            "The 'data' parameter must be calibration inputs (N, n_features), an (X, y) pair or "
            "a Dataset when criterion='activation'. Got None instead."
        )
    return _mean_abs(data, layer.in_features) * norms


def _mean_abs(data, n: int) -> torch.Tensor:
    from autoprune.tasks._data import as_dataset, iterate_batches

    if isinstance(data, torch.Tensor):
        data = (data, torch.zeros(len(data)))
    total, count = torch.zeros(n, dtype=torch.float64), 0
    for inputs, _ in iterate_batches(as_dataset(data, "data"), batch_size=256):
        inputs = torch.as_tensor(inputs)
        if inputs.dim() != 2 or inputs.shape[1] != n:
            raise ParameterError(
                f"The 'data' parameter must hold inputs of shape (N, {n}). "
                f"Got a batch of shape {tuple(inputs.shape)} instead."
            )
        total += inputs.detach().double().abs().sum(0).cpu()
        count += len(inputs)
    return total / max(count, 1)


def _kept(keep, scores: torch.Tensor) -> list[int]:
    """The kept feature indices, ascending: the ``keep`` best by score, or the indices given."""
    n = len(scores)
    expected = (
        f"an integer in [1, {n}] (the number of input features to keep) or a list of "
        f"distinct feature indices in [0, {n})"
    )
    if isinstance(keep, int) and not isinstance(keep, bool):
        if not 1 <= keep <= n:
            raise _keep_error(expected, keep)
        order = sorted(range(n), key=lambda i: (-float(scores[i]), i))
        return sorted(order[:keep])
    if isinstance(keep, (list, tuple, range)) and keep:
        indices = list(keep)
        if all(
            isinstance(i, int) and not isinstance(i, bool) and 0 <= i < n for i in indices
        ) and len(set(indices)) == len(indices):
            return sorted(indices)
    raise _keep_error(expected, keep)


def _keep_error(expected: str, keep) -> ParameterError:
    return ParameterError(f"The 'keep' parameter must be {expected}. Got {shorten(keep)} instead.")


def _keep_columns(layer: nn.Linear, kept: list[int]) -> None:
    """Keep columns ``kept`` of ``layer``'s weight, in place (its ``in_features`` shrinks)."""
    weight = layer.weight
    index = torch.as_tensor(kept, dtype=torch.long, device=weight.device)
    narrow = weight.data.index_select(1, index).clone()
    layer.weight = nn.Parameter(narrow, requires_grad=weight.requires_grad)
    layer.in_features = len(kept)
