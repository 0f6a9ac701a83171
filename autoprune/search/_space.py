"""Search spaces: YAML files in ``search_spaces/``, validated on load.

A space says which scopes, granularities, criteria and schedules the search
may choose, the range of every per-layer amount, the budget levels it evolves
candidates for, how candidates are scored and recovered, and how the
sensitivity analysis bounds them. Every field has
a default (``search_spaces/default.yaml`` shows them all); an unknown field,
a wrong type or a value out of range is a :class:`SearchSpaceError` naming the
field.

Example:
    >>> space = load_space("quick")
    >>> space.granularities, space.recovery.epochs
    (('unstructured',), 0.3)
    >>> SearchSpace.from_dict({"criteria": ["l1", "psychic"]})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    autoprune.errors.SearchSpaceError: criteria[1]: must be one of l1, l2, ... Got 'psychic' instead.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from autoprune._io import read_data_file
from autoprune._validation import shorten
from autoprune.errors import SearchSpaceError
from autoprune.search._space_fields import (
    CHANNEL_RANGE,
    SPACE_FIELDS,
    SPARSITY_RANGE,
    AmountRange,
    EvolutionSettings,
    FinetuneSettings,
    FitnessSettings,
    RecoverySettingsSpec,
    SensitivitySettings,
    read_fields,
)

SPACES_DIR_NAME = "search_spaces"


@dataclass(frozen=True)
class SearchSpace:
    """What the search may choose, and how it evaluates (see ``search_spaces/default.yaml``)."""

    name: str = "default"
    description: str = ""
    scopes: tuple[str, ...] = ("local", "global")
    granularities: tuple[str, ...] = ("unstructured", "structured")
    criteria: tuple[str, ...] = ("l1", "l2", "taylor", "obd", "activation", "lamp")
    schedules: tuple[str, ...] = ("one-shot", "iterative", "gradual", "regularised")
    nm: tuple[str, ...] = ("2:4",)
    sparsity: AmountRange = SPARSITY_RANGE
    channel_ratio: AmountRange = CHANNEL_RANGE
    tiers: int = 0
    levels: tuple[float, ...] = (1.0, 0.75, 0.5)
    depth: bool = False  # whole blocks removed too, chosen jointly with the widths
    inputs: bool = False  # input features dropped too (a first linear layer), chosen jointly
    round_to: int = 0  # structured: kept channels rounded to a multiple of this (0: not rounded)
    sensitivity: SensitivitySettings = SensitivitySettings()
    fitness: FitnessSettings = FitnessSettings()
    evolution: EvolutionSettings = EvolutionSettings()
    recovery: RecoverySettingsSpec = RecoverySettingsSpec()
    finetune: FinetuneSettings = FinetuneSettings()

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "search space") -> SearchSpace:
        """Validate plain data (from YAML); every error names the field."""
        space = read_fields(cls, SPACE_FIELDS, source, {} if data is None else data)
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
