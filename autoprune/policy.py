"""The Policy: what to prune, how much, how, on which schedule, and how to fine-tune.

A policy is the one hand-off between search time and production time. Per
layer it says the granularity, the criterion and the amount:

* ``unstructured``: ``sparsity`` = fraction of the layer's weight elements removed;
* ``structured``: ``channel_ratio`` = fraction of its output channels (neurons)
  removed, physically; the weight sparsity that results is larger (the next
  layer loses inputs too) and is reported separately;
* ``nm``: ``nm = "N:M"``, keep N of every M consecutive weights along the input
  dimension (sparsity 1 - N/M).

With ``scope="global"`` the per-layer amounts are not given: one ranking across
the listed layers removes ``global_sparsity`` of their weights (unstructured) or
channels (structured), never more than a layer's ``max_sparsity`` and never
leaving fewer than ``min_kept`` units in a layer.

Example:
    >>> p = Policy.uniform(["fc1", "fc2"], 0.5)
    >>> p.layers["fc1"].sparsity, p.scope, p.schedule.name
    (0.5, 'local', 'one-shot')
    >>> Policy.from_dict(p.to_dict()) == p
    True
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from autoprune._validation import (
    BOOL,
    MAX_SEED,
    Interval,
    Options,
    check_plain_data,
    shorten,
    validate,
    validate_fields,
)
from autoprune.errors import PolicyError

GRANULARITIES = ("unstructured", "structured", "nm")
SCOPES = ("local", "global")
SCHEDULES = ("one-shot", "iterative", "gradual")
CRITERIA = ("l1", "l2", "random", "taylor", "obd", "activation", "lamp")
CRITERION_ALIASES = {"magnitude": "l1", "hessian": "obd", "gradient": "taylor"}
# The LayerPolicy field that holds a layer's amount, per granularity.
AMOUNT_FIELD = {"unstructured": "sparsity", "structured": "channel_ratio", "nm": "nm"}
# Upper bounds of the settings that cost time or memory in proportion (a policy asking for more is a
# mistake; ``rounds: 100000`` would prune for many minutes before any fine-tuning).
MAX_ROUNDS = 100  # iterative pruning rounds
MAX_EVERY = 100_000  # optimizer steps between gradual mask updates
MAX_MIN_KEPT = 100_000  # units a global ranking leaves in each layer
MAX_ROUND_TO = 4096  # channel counts rounded to a multiple of this
MAX_BATCH_SIZE = 65_536  # fine-tuning batch size
MAX_EPOCHS = 1000  # fine-tuning epochs

# The declared constraints of every policy setting (None: not given).
FRACTION = Interval(float, 0, 1, closed="left")  # a sparsity or channel ratio: [0, 1)
LAYER_FIELDS = {
    "granularity": Options(GRANULARITIES),
    "criterion": Options(CRITERIA),
    "sparsity": [None, FRACTION],
    "channel_ratio": [None, FRACTION],
    "max_sparsity": [None, FRACTION],
}
SCHEDULE_FIELDS = {
    "rounds": Interval(int, 1, MAX_ROUNDS),
    "every": Interval(int, 1, MAX_EVERY),
    "end": Interval(float, 0, 1),
}
FINETUNE_FIELDS = {
    "epochs": Interval(float, 0, MAX_EPOCHS),
    "lr": Interval(float, 0, 1, closed="neither"),
    "batch_size": [None, Interval(int, 1, MAX_BATCH_SIZE)],
    "recalibrate_bn": BOOL,
}
POLICY_FIELDS = {
    "scope": Options(SCOPES),
    "min_kept": Interval(int, 1, MAX_MIN_KEPT),
    "round_to": [None, Interval(int, 1, MAX_ROUND_TO)],
    "seed": Interval(int, -MAX_SEED, MAX_SEED, closed="left"),  # torch takes [-2**63, 2**64)
}


def printable(name: Any) -> str:
    r"""A name as text for a one-line message: control characters (newlines, ...) escaped, at most 200 characters.

    Example:
        >>> printable("fc1"), printable("fc\n1")
        ('fc1', 'fc\\n1')
    """
    return shorten(name, text=True)


def parse_nm(text: str, *, layer: str | None = None) -> tuple[int, int]:
    """``"2:4"`` -> ``(2, 4)``; N must be smaller than M. ``layer`` names the layer in errors."""
    where = f"Layer '{printable(layer)}': " if layer else ""
    try:
        n_text, m_text = str(text).split(":")
        n, m = int(n_text), int(m_text)
    except ValueError:
        raise PolicyError(
            f"{where}'nm' must look like 'N:M' (e.g. '2:4'). Got {shorten(text)} instead."
        ) from None
    if not (0 < n < m):
        raise PolicyError(f"{where}'nm' needs 0 < N < M. Got {shorten(text)} instead.")
    return n, m


@dataclass(frozen=True)
class LayerPolicy:
    """How one layer is pruned (see the module docstring for the meaning of each amount)."""

    granularity: str = "unstructured"
    criterion: str = "l1"
    sparsity: float | None = None
    channel_ratio: float | None = None
    nm: str | None = None
    max_sparsity: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.criterion, str):
            criterion = CRITERION_ALIASES.get(self.criterion, self.criterion)
            object.__setattr__(self, "criterion", criterion)
        validate_fields(self, LAYER_FIELDS, error=PolicyError)
        if self.nm is not None:
            parse_nm(self.nm)

    @property
    def amount(self) -> float:
        """The requested amount in this layer's own unit (sparsity, channel ratio, or 1 - N/M)."""
        if self.granularity == "nm":
            n, m = parse_nm(self.nm or "")
            return 1.0 - n / m
        value = getattr(self, AMOUNT_FIELD[self.granularity])
        return 0.0 if value is None else value


@dataclass(frozen=True)
class ScheduleSpec:
    """One-shot, iterative (``rounds``) or gradual (masks updated ``every`` steps until ``end``)."""

    name: str = "one-shot"
    rounds: int = 3
    every: int = 20
    end: float = 0.75

    def __post_init__(self) -> None:
        validate("schedule", self.name, Options(SCHEDULES), error=PolicyError)
        validate_fields(self, SCHEDULE_FIELDS, error=PolicyError)


@dataclass(frozen=True)
class FinetuneRecipe:
    """Masked fine-tuning after pruning: epochs (fractional allowed), learning rate, BN recalibration."""

    epochs: float = 1.0
    lr: float = 1e-4
    batch_size: int | None = None
    recalibrate_bn: bool = True

    def __post_init__(self) -> None:
        validate_fields(self, FINETUNE_FIELDS, error=PolicyError)


@dataclass(frozen=True)
class Policy:
    """A complete pruning policy (see the module docstring)."""

    layers: dict[str, LayerPolicy]
    scope: str = "local"
    global_sparsity: float | None = None
    min_kept: int = 1
    round_to: int | None = None
    schedule: ScheduleSpec = field(default_factory=ScheduleSpec)
    finetune: FinetuneRecipe = field(default_factory=FinetuneRecipe)
    seed: int = 0

    def __post_init__(self) -> None:
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
        layers = data.pop("layers", None)
        if not isinstance(layers, dict) or not layers:
            raise PolicyError(
                "The 'layers' field must be a non-empty mapping of layer name to settings."
            )
        for name in layers:
            if not str(
                name
            ).isprintable():  # no module is named so; a message naming it would break
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


MAX_PROVENANCE_ITEMS = 256  # entries of a policy file's provenance, nested ones included


def check_provenance(value, *, source: str = "policy") -> dict:
    """A policy file's ``provenance``: a small mapping of plain values, else PolicyError.

    Text keys; values are text, numbers, true/false, null, or lists and mappings of
    them, at most 3 levels deep, 256 entries and 1,000 characters a string.

    Example:
        >>> check_provenance({"task": "digits-mlp", "task_options": {}, "input_shape": [1, 64]})
        {'task': 'digits-mlp', 'task_options': {}, 'input_shape': [1, 64]}
        >>> check_provenance({"task": ["x"] * 1000}, source="p.yaml")
        Traceback (most recent call last):
        ...
        autoprune.errors.PolicyError: p.yaml: 'provenance' is too large: at most 256 entries in all (at 'provenance.task[254]'). Shorten it or leave it out.
    """
    try:
        return check_plain_data(
            "provenance", value, max_items=MAX_PROVENANCE_ITEMS, error=PolicyError
        )
    except PolicyError as exc:
        raise PolicyError(f"{source}: {exc}") from None
