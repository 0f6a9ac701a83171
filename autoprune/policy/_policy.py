"""The Policy: per-layer settings, the scope, the schedule and the fine-tuning recipe, as one value.

Example:
    >>> p = Policy.global_ranking(["fc1", "fc2"], 0.5, max_sparsity={"fc2": 0.3})
    >>> p.scope, p.layers["fc2"].max_sparsity, p.layers["fc1"].max_sparsity
    ('global', 0.3, None)
    >>> Policy.from_dict({"layers": {"fc1": {"sparsity": 0.5}}, "colour": "red"})
    Traceback (most recent call last):
    ...
    autoprune.errors.PolicyError: Unknown policy field(s) ['colour']; expected some of ['blocks', 'global_sparsity', 'inputs', 'min_kept', 'round_to', 'scope', 'seed'].
    >>> Policy.uniform(["fc1"], 0.5, inputs=[7, 2, 5]).inputs
    (2, 5, 7)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from autoprune._validation import Options, shorten, validate, validate_fields
from autoprune.errors import PolicyError
from autoprune.policy._constraints import (
    AMOUNT_FIELD,
    FRACTION,
    GRANULARITIES,
    POLICY_FIELDS,
    printable,
)
from autoprune.policy._layer import LayerPolicy
from autoprune.policy._recipe import FinetuneRecipe, ScheduleSpec


@dataclass(frozen=True)
class Policy:
    """A complete pruning policy (see :mod:`autoprune.policy`)."""

    layers: dict[str, LayerPolicy]
    scope: str = "local"
    global_sparsity: float | None = None
    min_kept: int = 1
    round_to: int | None = None
    schedule: ScheduleSpec = field(default_factory=ScheduleSpec)
    finetune: FinetuneRecipe = field(default_factory=FinetuneRecipe)
    seed: int = 0
    #: whole blocks removed first (depth pruning); the layers inside them are then ignored
    blocks: tuple[str, ...] = ()
    #: the input features kept (columns of the first linear layer, ascending); None: all of them
    inputs: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "blocks", _block_names(self.blocks))
        object.__setattr__(self, "inputs", _input_indices(self.inputs))
        if not isinstance(self.layers, dict):
            raise PolicyError(
                f"The 'layers' field must be a mapping of layer name to settings. Got {type(self.layers).__name__} instead."
            )
        validate_fields(self, POLICY_FIELDS, error=PolicyError)
        for name, layer in self.layers.items():
            if not isinstance(layer, LayerPolicy):
                raise PolicyError(
                    f"Layer '{printable(name)}' must be a LayerPolicy. Got {type(layer).__name__} instead."
                )
            self._check_layer(name, layer)
        if self.scope == "global":
            self._check_global()

    def _check_layer(self, name: str, layer: LayerPolicy) -> None:
        if self.scope == "global":
            return
        needed = AMOUNT_FIELD[layer.granularity]
        if getattr(layer, needed) is None:
            raise PolicyError(
                f"Layer '{printable(name)}' is {layer.granularity} and needs '{needed}'."
            )

    def _check_global(self) -> None:
        if self.global_sparsity is None:
            raise PolicyError("A global-scope policy needs 'global_sparsity'.")
        validate("global_sparsity", self.global_sparsity, FRACTION, error=PolicyError)
        kinds = {(layer.granularity, layer.criterion) for layer in self.layers.values()}
        if len(kinds) > 1:
            raise PolicyError(
                "A global-scope policy ranks all its layers together, so they must share one "
                f"granularity and criterion. Got {sorted(kinds)} instead."
            )
        if kinds and next(iter(kinds))[0] == "nm":
            raise PolicyError(
                "N:M sparsity has a fixed ratio per layer; use scope 'local' for 'nm'."
            )

    def inside_blocks(self, layer: str) -> bool:
        """Whether ``layer`` lies inside one of the removed :attr:`blocks`.

        Example:
            >>> Policy(layers={}, blocks=["layers.1"]).inside_blocks("layers.1.conv1")
            True
        """
        return any(layer == b or layer.startswith(f"{b}.") for b in self.blocks)

    @property
    def ranks_channels_globally(self) -> bool:
        """Whether one ranking across layers removes channels: the shape then depends on the weights."""
        return self.scope == "global" and any(
            lp.granularity == "structured" for lp in self.layers.values()
        )

    # ------------------------------------------------------------------ constructors

    @classmethod
    def uniform(
        cls,
        layer_names,
        amount: float,
        *,
        granularity: str = "unstructured",
        criterion: str = "l1",
        nm: str = "2:4",
        **settings: Any,
    ) -> Policy:
        """The same amount on every layer in ``layer_names`` (local scope)."""
        validate("granularity", granularity, Options(GRANULARITIES), error=PolicyError)
        key, value = AMOUNT_FIELD[granularity], nm if granularity == "nm" else amount
        layers = {
            n: LayerPolicy(granularity=granularity, criterion=criterion, **{key: value})
            for n in layer_names
        }
        return cls(layers=layers, **settings)

    @classmethod
    def global_ranking(
        cls,
        layer_names,
        global_sparsity: float,
        *,
        granularity: str = "unstructured",
        criterion: str = "l1",
        max_sparsity: float | dict[str, float] | None = None,
        **settings: Any,
    ) -> Policy:
        """One ranking across ``layer_names``; ``max_sparsity`` caps a layer (a number or per layer)."""
        caps = max_sparsity if isinstance(max_sparsity, dict) else {}
        default_cap = None if isinstance(max_sparsity, dict) else max_sparsity
        layers = {
            n: LayerPolicy(
                granularity=granularity, criterion=criterion, max_sparsity=caps.get(n, default_cap)
            )
            for n in layer_names
        }
        return cls(layers=layers, scope="global", global_sparsity=global_sparsity, **settings)

    # ------------------------------------------------------------------ plain data

    def to_dict(self) -> dict:
        """Plain data (for YAML/JSON); ``None`` settings are left out of layer entries."""
        out = asdict(self)
        out["blocks"] = list(self.blocks)
        out["inputs"] = None if self.inputs is None else list(self.inputs)
        out["layers"] = {
            n: {k: v for k, v in asdict(lp).items() if v is not None}
            for n, lp in self.layers.items()
        }
        return out

    @classmethod
    def from_dict(cls, data: dict) -> Policy:
        """Build from plain data; every unknown or mistyped field is a PolicyError naming it."""
        if not isinstance(data, dict):
            raise PolicyError(f"A policy must be a mapping. Got {type(data).__name__} instead.")
        data = dict(data)
        parsed = _parse_layers(data.pop("layers", None), depth_only=bool(data.get("blocks")))
        schedule = _build(ScheduleSpec, data.pop("schedule", {}) or {}, "schedule")
        finetune = _build(FinetuneRecipe, data.pop("finetune", {}) or {}, "finetune")
        known = {f.name for f in fields(cls)} - {"layers", "schedule", "finetune"}
        unknown = sorted(set(data) - known, key=str)
        if unknown:
            raise PolicyError(
                f"Unknown policy field(s) {shorten(unknown)}; expected some of {sorted(known)}."
            )
        try:
            return cls(layers=parsed, schedule=schedule, finetune=finetune, **data)
        except TypeError as exc:
            raise PolicyError(f"Invalid policy: {shorten(exc, text=True)}") from exc


def _block_names(blocks: Any) -> tuple[str, ...]:
    """The ``blocks`` field as a tuple of distinct block names, each printable text."""
    if isinstance(blocks, str) or not isinstance(blocks, (list, tuple)):
        raise PolicyError(
            f"The 'blocks' field must be a list of block names. Got {shorten(blocks)} instead."
        )
    for name in blocks:
        if not isinstance(name, str) or not name or not name.isprintable():
            raise PolicyError(
                f"The 'blocks' field must hold block names (printable text). Got {shorten(name)} instead."
            )
    if len(set(blocks)) < len(blocks):
        raise PolicyError(f"The 'blocks' field names a block twice: {shorten(list(blocks))}.")
    return tuple(blocks)


def _input_indices(inputs: Any) -> tuple[int, ...] | None:
    """The ``inputs`` field as ascending distinct feature indices (None: every feature kept)."""
    if inputs is None:
        return None
    if (
        isinstance(inputs, (str, bytes))
        or not isinstance(inputs, (list, tuple))
        or not inputs
        or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in inputs)
    ):
        raise PolicyError(
            "The 'inputs' field must be a non-empty list of input feature indices (integers >= 0) "
            f"or null. Got {shorten(inputs)} instead."
        )
    if len(set(inputs)) < len(inputs):
        raise PolicyError(f"The 'inputs' field names a feature twice: {shorten(list(inputs))}.")
    return tuple(sorted(inputs))


def _parse_layers(layers: Any, *, depth_only: bool = False) -> dict[str, LayerPolicy]:
    """The ``layers`` mapping of plain data, each entry a LayerPolicy; names printable and distinct.

    Empty only in a policy that removes whole blocks (``depth_only``).
    """
    if depth_only and layers == {}:
        return {}
    if not isinstance(layers, dict) or not layers:
        raise PolicyError(
            "The 'layers' field must be a non-empty mapping of layer name to settings."
        )
    for name in layers:
        if not str(name).isprintable():  # no module is named so; a message naming it would break
            raise PolicyError(
                f"Layer name {shorten(str(name))} must be printable text (no newline or other control character)."
            )
    parsed = {
        str(name): _build(LayerPolicy, entry, f"layers.{printable(name)}")
        for name, entry in layers.items()
    }
    if len(parsed) < len(layers):
        names = [str(name) for name in layers]
        repeated = sorted({name for name in names if names.count(name) > 1})
        raise PolicyError(
            f"Layer name(s) {shorten(repeated)} are given more than once (e.g. as 1 and '1'); give each layer once."
        )
    return parsed


def _build(kind, entry, where: str):
    if not isinstance(entry, dict):
        raise PolicyError(
            f"'{where}' must be a mapping. Got {type(entry).__name__} ({shorten(entry)}) instead."
        )
    names = {f.name for f in fields(kind)}
    unknown = sorted(set(entry) - names, key=str)
    if unknown:
        raise PolicyError(
            f"'{where}' has unknown field(s) {shorten(unknown)}; expected some of {sorted(names)}."
        )
    try:
        return kind(**entry)
    except PolicyError as exc:
        raise PolicyError(f"'{where}': {exc}") from exc
