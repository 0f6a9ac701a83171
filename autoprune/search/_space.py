"""Search spaces: YAML files in ``search_spaces/``, validated on load.

A space says which scopes, granularities, criteria and schedules the search
may choose, the range of every per-layer amount, how candidates are screened
and fine-tuned, and how the sensitivity analysis bounds them. Every field has
a default (``search_spaces/default.yaml`` shows them all); an unknown field,
a wrong type or a value out of range is a :class:`SearchSpaceError` naming the
field.

Example:
    >>> space = load_space("quick")
    >>> space.granularities, space.finetune.epochs
    (('unstructured',), 0.3)
    >>> SearchSpace.from_dict({"criteria": ["l1", "psychic"]})
    Traceback (most recent call last):
    ...
    autoprune.errors.SearchSpaceError: criteria[1]: must be one of l1, l2, random, taylor, obd, activation, lamp. Got 'psychic' instead.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from autoprune._io import read_data_file
from autoprune._validation import shorten
from autoprune.errors import SearchSpaceError
from autoprune.policy import (
    CRITERIA,
    CRITERION_ALIASES,
    GRANULARITIES,
    MAX_EVERY,
    MAX_ROUNDS,
    SCHEDULES,
    SCOPES,
    parse_nm,
    printable,
)

SPACES_DIR_NAME = "search_spaces"
MAX_TIERS = 100  # sensitivity tiers (one search dimension each)
MAX_STARTUP = 10_000  # trials always fine-tuned before screening starts
MAX_VAL_ITEMS = 10_000_000  # validation items of the sensitivity analysis


def _err(where: str, expected: str, value: Any) -> SearchSpaceError:
    return SearchSpaceError(f"{where}: must be {expected}. Got {shorten(value)} instead.")


def _number(where: str, value: Any, low: float, high: float, *, include_low: bool = True) -> float:
    # integers are finite (and math.isfinite overflows on those beyond the float range)
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or (isinstance(value, float) and not math.isfinite(value))
    ):
        raise _err(where, "a number", value)
    if not ((low <= value if include_low else low < value) and value <= high):
        raise _err(where, f"in {'[' if include_low else '('}{low:g}, {high:g}]", value)
    return float(value)


def _integer(where: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _err(where, f"an integer in [{low}, {high:,}]", value)
    return value


def _choices(where: str, value: Any, allowed, aliases=None) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise _err(where, "a non-empty list", value)
    out = []
    for i, item in enumerate(value):
        item = (aliases or {}).get(item, item) if isinstance(item, str) else item
        if item not in allowed:
            raise _err(f"{where}[{i}]", "one of " + ", ".join(allowed), value[i])
        if item not in out:
            out.append(item)
    return tuple(out)


def _range(
    where: str, value: Any, low: float, high: float, *, below: bool = False
) -> tuple[float, float]:
    """A number or a [low, high] pair within [low, high] (``below``: strictly below ``high``)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        v = _number(where, value, low, high)
        if below and v >= high:
            raise _err(where, f"below {high:g}", value)
        return (v, v)
    if not isinstance(value, list) or len(value) != 2:
        raise _err(where, "a number or a [low, high] pair", value)
    lo, hi = (
        _number(f"{where}[0]", value[0], low, high),
        _number(f"{where}[1]", value[1], low, high),
    )
    if lo > hi:
        raise _err(where, "[low, high] with low <= high", value)
    if below and hi >= high:
        raise _err(where, f"[low, high] below {high:g}", value)
    return (lo, hi)


def _mapping(where: str, value: Any, known: dict[str, Any]) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _err(where, "a mapping", value)
    unknown = sorted(set(value) - set(known), key=str)
    if unknown:
        raise SearchSpaceError(
            f"{where}: unknown field {shorten(unknown[0])}; expected some of {', '.join(sorted(known))}."
        )
    return value


@dataclass(frozen=True)
class AmountRange:
    """Bounds of a per-unit amount, with per-layer overrides."""

    low: float = 0.0
    high: float = 0.99
    layers: dict[str, tuple[float, float]] = field(default_factory=dict)

    def bounds(self, unit: str) -> tuple[float, float]:
        return self.layers.get(unit, (self.low, self.high))

    @classmethod
    def parse(cls, where: str, data: Any, default: AmountRange) -> AmountRange:
        data = _mapping(where, data, {"low": 0, "high": 0, "layers": 0})
        low = _number(f"{where}.low", data.get("low", default.low), 0.0, 0.999)
        high = _number(f"{where}.high", data.get("high", default.high), 0.0, 0.999)
        if low > high:
            raise _err(where, "low <= high", {"low": low, "high": high})
        layers_raw = data.get("layers", {}) or {}
        if not isinstance(layers_raw, dict):
            raise _err(f"{where}.layers", "a mapping of layer name to [low, high]", layers_raw)
        layers = {
            str(k): _range(f"{where}.layers.{printable(k)}", v, 0.0, 0.999)
            for k, v in layers_raw.items()
        }
        return cls(low, high, layers)


@dataclass(frozen=True)
class SensitivitySettings:
    enabled: bool = True
    criterion: str = "l1"
    grid: tuple[float, ...] = (0.3, 0.5, 0.7, 0.9, 0.95, 0.98)
    structured_grid: tuple[float, ...] = (0.25, 0.5, 0.75, 0.9)
    tolerance: float = 0.1
    val_items: int = 2000


@dataclass(frozen=True)
class ScreeningSettings:
    epochs: float = 0.0
    margin: float = 0.002
    startup: int = 4


@dataclass(frozen=True)
class FinetuneSettings:
    epochs: float = 0.5
    lr: tuple[float, float] = (1e-4, 1e-3)
    final_epochs: float = 3.0
    iterative_rounds: int = 3
    gradual_every: int = 20


@dataclass(frozen=True)
class SearchSpace:
    """What the search may choose, and how it evaluates (see ``search_spaces/default.yaml``)."""

    name: str = "default"
    description: str = ""
    scopes: tuple[str, ...] = ("local", "global")
    granularities: tuple[str, ...] = ("unstructured", "structured")
    criteria: tuple[str, ...] = ("l1", "l2", "taylor", "obd", "activation", "lamp")
    schedules: tuple[str, ...] = ("one-shot", "iterative", "gradual")
    nm: tuple[str, ...] = ("2:4",)
    sparsity: AmountRange = AmountRange(0.0, 0.99)
    channel_ratio: AmountRange = AmountRange(0.0, 0.9)
    tiers: int = 0
    budget_use: tuple[float, float] = (0.7, 1.0)
    sensitivity: SensitivitySettings = SensitivitySettings()
    screening: ScreeningSettings = ScreeningSettings()
    finetune: FinetuneSettings = FinetuneSettings()

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "search space") -> SearchSpace:
        """Validate plain data (from YAML); every error names the field."""
        if data is None:
            data = {}
        known = {f.name: f for f in fields(cls)}
        data = _mapping(source, data, known)
        d = cls()
        sens = _mapping(
            "sensitivity", data.get("sensitivity"), {f.name: 0 for f in fields(SensitivitySettings)}
        )
        scr = _mapping(
            "screening", data.get("screening"), {f.name: 0 for f in fields(ScreeningSettings)}
        )
        ft = _mapping(
            "finetune", data.get("finetune"), {f.name: 0 for f in fields(FinetuneSettings)}
        )
        nm = data.get("nm", list(d.nm))
        if isinstance(nm, str):
            nm = [nm]
        if not isinstance(nm, list) or not nm:
            raise _err("nm", "a non-empty list of 'N:M' patterns", nm)
        for i, pattern in enumerate(nm):
            try:
                parse_nm(pattern)
            except Exception:
                raise _err(f"nm[{i}]", "an 'N:M' pattern with 0 < N < M", pattern) from None
        nm = tuple(dict.fromkeys(str(p) for p in nm))
        sensitivity = SensitivitySettings(
            enabled=_bool("sensitivity.enabled", sens.get("enabled", d.sensitivity.enabled)),
            criterion=_choices(
                "sensitivity.criterion",
                _one("sensitivity.criterion", sens.get("criterion", d.sensitivity.criterion)),
                CRITERIA,
                CRITERION_ALIASES,
            )[0],
            grid=_grid("sensitivity.grid", sens.get("grid", list(d.sensitivity.grid))),
            structured_grid=_grid(
                "sensitivity.structured_grid",
                sens.get("structured_grid", list(d.sensitivity.structured_grid)),
            ),
            tolerance=_number(
                "sensitivity.tolerance", sens.get("tolerance", d.sensitivity.tolerance), 0.0, 1.0
            ),
            val_items=_integer(
                "sensitivity.val_items",
                sens.get("val_items", d.sensitivity.val_items),
                1,
                MAX_VAL_ITEMS,
            ),
        )
        screening = ScreeningSettings(
            epochs=_number("screening.epochs", scr.get("epochs", d.screening.epochs), 0.0, 100.0),
            margin=_number("screening.margin", scr.get("margin", d.screening.margin), 0.0, 1.0),
            startup=_integer(
                "screening.startup", scr.get("startup", d.screening.startup), 0, MAX_STARTUP
            ),
        )
        finetune = FinetuneSettings(
            epochs=_number("finetune.epochs", ft.get("epochs", d.finetune.epochs), 0.0, 1000.0),
            lr=_range("finetune.lr", ft.get("lr", list(d.finetune.lr)), 1e-8, 1.0, below=True),
            final_epochs=_number(
                "finetune.final_epochs",
                ft.get("final_epochs", d.finetune.final_epochs),
                0.0,
                1000.0,
            ),
            iterative_rounds=_integer(
                "finetune.iterative_rounds",
                ft.get("iterative_rounds", d.finetune.iterative_rounds),
                1,
                MAX_ROUNDS,
            ),
            gradual_every=_integer(
                "finetune.gradual_every",
                ft.get("gradual_every", d.finetune.gradual_every),
                1,
                MAX_EVERY,
            ),
        )
        name = data.get("name", d.name)
        if not isinstance(name, str) or not name:
            raise _err("name", "a non-empty string", name)
        description = data.get("description", "")
        if not isinstance(description, str):
            raise _err("description", "a string", description)
        space = cls(
            name=name,
            description=description,
            scopes=_choices("scopes", data.get("scopes", list(d.scopes)), SCOPES),
            granularities=_choices(
                "granularities", data.get("granularities", list(d.granularities)), GRANULARITIES
            ),
            criteria=_choices(
                "criteria", data.get("criteria", list(d.criteria)), CRITERIA, CRITERION_ALIASES
            ),
            schedules=_choices("schedules", data.get("schedules", list(d.schedules)), SCHEDULES),
            nm=nm,
            sparsity=AmountRange.parse("sparsity", data.get("sparsity"), d.sparsity),
            channel_ratio=AmountRange.parse(
                "channel_ratio", data.get("channel_ratio"), d.channel_ratio
            ),
            tiers=_integer("tiers", data.get("tiers", d.tiers), 0, MAX_TIERS),
            budget_use=_range("budget_use", data.get("budget_use", list(d.budget_use)), 0.01, 1.0),
            sensitivity=sensitivity,
            screening=screening,
            finetune=finetune,
        )
        if space.tiers and not space.sensitivity.enabled:
            raise SearchSpaceError(
                "tiers: tiers come from the sensitivity analysis; set sensitivity.enabled: true or tiers: 0."
            )
        return space

    def to_dict(self) -> dict:
        """Plain data (lists, not tuples) that :meth:`from_dict` reads back to an equal space."""

        def plain(value):
            if isinstance(value, (tuple, list)):
                return [plain(v) for v in value]
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            return value

        return plain(asdict(self))


def _one(where: str, value: Any) -> Any:
    if not isinstance(value, str):
        raise _err(where, "one criterion name", value)
    return value


def _bool(where: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _err(where, "true or false", value)
    return value


def _grid(where: str, value: Any) -> tuple[float, ...]:
    if not isinstance(value, list) or not value:
        raise _err(where, "a non-empty list of amounts in (0, 1)", value)
    values = [
        _number(f"{where}[{i}]", v, 0.0, 0.999, include_low=False) for i, v in enumerate(value)
    ]
    return tuple(sorted(set(values)))


def spaces_dirs() -> list[Path]:
    """Where named spaces are looked for: ./search_spaces, then the ones installed with autoprune."""
    from importlib.resources import files

    installed = Path(str(files("autoprune") / SPACES_DIR_NAME))
    return [Path.cwd() / SPACES_DIR_NAME, installed]


def available_spaces() -> list[str]:
    """Names of the spaces found in the search_spaces directories."""
    names = set()
    for directory in spaces_dirs():
        if directory.is_dir():
            names.update(p.stem for p in directory.glob("*.yaml"))
    return sorted(names)


def load_space(name_or_path: str | Path | SearchSpace | dict | None = "default") -> SearchSpace:
    """A space by name (``default``), by YAML path, or from a mapping; validated."""
    if isinstance(name_or_path, SearchSpace):
        return name_or_path
    if name_or_path is None:
        name_or_path = "default"
    if isinstance(name_or_path, dict):
        return SearchSpace.from_dict(name_or_path)
    text = str(name_or_path)
    path = Path(text)
    is_path = path.suffix in (".yaml", ".yml") or path.is_file() or ("/" in text and path.exists())
    if not is_path:
        found = [d / f"{text}.yaml" for d in spaces_dirs() if (d / f"{text}.yaml").is_file()]
        if not found:
            raise SearchSpaceError(
                f"Unknown search space {shorten(text)}. Available: {', '.join(available_spaces()) or 'none'}; or give a path to a YAML file."
            )
        path = found[0]
    data = read_data_file(path, error=SearchSpaceError, what="Search space file")
    return SearchSpace.from_dict(data, source=shorten(str(path), text=True))
