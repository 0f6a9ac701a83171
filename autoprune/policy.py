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
    check_choice,
    check_fraction,
    check_number,
    check_plain_data,
    check_positive_int,
    shorten,
)
from autoprune.errors import PolicyError

GRANULARITIES = ("unstructured", "structured", "nm")
SCOPES = ("local", "global")
SCHEDULES = ("one-shot", "iterative", "gradual")
CRITERIA = ("l1", "l2", "random", "taylor", "obd", "activation", "lamp")
CRITERION_ALIASES = {"magnitude": "l1", "hessian": "obd", "gradient": "taylor"}
MAX_SEED = 2**63  # torch generators take seeds in [-2**63, 2**64); the schedules add small offsets
# Upper bounds of the settings that cost time or memory in proportion (a policy asking for more is a
# mistake; ``rounds: 100000`` would prune for many minutes before any fine-tuning).
MAX_ROUNDS = 100  # iterative pruning rounds
MAX_EVERY = 100_000  # optimizer steps between gradual mask updates
MAX_MIN_KEPT = 100_000  # units a global ranking leaves in each layer
MAX_ROUND_TO = 4096  # channel counts rounded to a multiple of this
MAX_BATCH_SIZE = 65_536  # fine-tuning batch size
MAX_EPOCHS = 1000  # fine-tuning epochs


def _number(name: str, value: Any) -> float:
    return check_number(name, value, error=PolicyError)


def _fraction(name: str, value: Any, *, include_high: bool = False) -> float:
    return check_fraction(name, value, include_high=include_high, error=PolicyError)


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
        check_choice("granularity", self.granularity, GRANULARITIES, error=PolicyError)
        criterion = (
            CRITERION_ALIASES.get(self.criterion, self.criterion)
            if isinstance(self.criterion, str)
            else self.criterion
        )
        object.__setattr__(
            self, "criterion", check_choice("criterion", criterion, CRITERIA, error=PolicyError)
        )
        if self.sparsity is not None:
            _fraction("sparsity", self.sparsity)
        if self.channel_ratio is not None:
            _fraction("channel_ratio", self.channel_ratio)
        if self.max_sparsity is not None:
            _fraction("max_sparsity", self.max_sparsity)
        if self.nm is not None:
            parse_nm(self.nm)

    @property
    def amount(self) -> float:
        """The requested amount in this layer's own unit (sparsity, channel ratio, or 1 - N/M)."""
        if self.granularity == "nm":
            n, m = parse_nm(self.nm or "")
            return 1.0 - n / m
        value = self.sparsity if self.granularity == "unstructured" else self.channel_ratio
        return 0.0 if value is None else value


@dataclass(frozen=True)
class ScheduleSpec:
    """One-shot, iterative (``rounds``) or gradual (masks updated ``every`` steps until ``end``)."""

    name: str = "one-shot"
    rounds: int = 3
    every: int = 20
    end: float = 0.75

    def __post_init__(self) -> None:
        check_choice("schedule", self.name, SCHEDULES, error=PolicyError)
        check_positive_int("rounds", self.rounds, maximum=MAX_ROUNDS, error=PolicyError)
        check_positive_int("every", self.every, maximum=MAX_EVERY, error=PolicyError)
        _fraction("end", self.end, include_high=True)


@dataclass(frozen=True)
class FinetuneRecipe:
    """Masked fine-tuning after pruning: epochs (fractional allowed), learning rate, BN recalibration."""

    epochs: float = 1.0
    lr: float = 1e-4
    batch_size: int | None = None
    recalibrate_bn: bool = True

    def __post_init__(self) -> None:
        if not 0 <= _number("epochs", self.epochs) <= MAX_EPOCHS:
            raise PolicyError(
                f"The 'epochs' parameter must be in [0, {MAX_EPOCHS}]. Got {shorten(self.epochs)} instead."
            )
        if not 0 < _number("lr", self.lr) < 1:
            raise PolicyError(
                f"The 'lr' parameter must be in (0, 1). Got {shorten(self.lr)} instead."
            )
        if self.batch_size is not None:
            check_positive_int(
                "batch_size", self.batch_size, maximum=MAX_BATCH_SIZE, error=PolicyError
            )
        if not isinstance(self.recalibrate_bn, bool):
            raise PolicyError(
                f"The 'recalibrate_bn' parameter must be true or false. Got {shorten(self.recalibrate_bn)} instead."
            )


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
        check_choice("scope", self.scope, SCOPES, error=PolicyError)
        check_positive_int("min_kept", self.min_kept, maximum=MAX_MIN_KEPT, error=PolicyError)
        if self.round_to is not None:
            check_positive_int("round_to", self.round_to, maximum=MAX_ROUND_TO, error=PolicyError)
        if (
            isinstance(self.seed, bool)
            or not isinstance(self.seed, int)
            or not -MAX_SEED <= self.seed < MAX_SEED
        ):
            raise PolicyError(
                f"The 'seed' parameter must be an integer in [-2**63, 2**63). Got {shorten(self.seed)} instead."
            )
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
        needed = {"unstructured": "sparsity", "structured": "channel_ratio", "nm": "nm"}[
            layer.granularity
        ]
        if getattr(layer, needed) is None:
            raise PolicyError(
                f"Layer '{printable(name)}' is {layer.granularity} and needs '{needed}'."
            )

    def _check_global(self) -> None:
        if self.global_sparsity is None:
            raise PolicyError("A global-scope policy needs 'global_sparsity'.")
        _fraction("global_sparsity", self.global_sparsity)
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
        key = {"unstructured": "sparsity", "structured": "channel_ratio", "nm": "nm"}.get(
            granularity
        )
        value = nm if granularity == "nm" else amount
        layers = (
            {
                n: LayerPolicy(granularity=granularity, criterion=criterion, **{key: value})
                for n in layer_names
            }
            if key
            else {}
        )
        if key is None:
            check_choice("granularity", granularity, GRANULARITIES, error=PolicyError)
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
            ).isprintable():  # no module is named so, and every message naming it would break
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
