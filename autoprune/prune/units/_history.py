"""The structured-pruning history: what was removed from which unit, and its JSON form.

A history is a list of :class:`HistoryEntry`; replaying it on a fresh model of
the same architecture rebuilds the pruned architecture (that is how a pruned
model is loaded without pickle). Its JSON form, stored in the weights file, is
one ``[unit, kind, removed]`` list per entry: ``kind`` is ``true`` for output
channels (``false``: input channels), ``"heads"`` or ``"neurons"``; ``removed``
is a fixed-width hex bitmask of the removed indices (bit i: index i), or, in
files of earlier versions, a list of indices.

Example:
    >>> entry = HistoryEntry.from_json(["conv1", True, "009"])
    >>> entry.kind, entry.removed, entry.to_json()
    ('channels', (0, 3), ['conv1', True, '009'])
    >>> HistoryEntry.of("fc1", "neurons", {1}, units=8).to_json()
    ['fc1', 'neurons', '02']
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from autoprune.errors import PruningError

#: What an entry removes, and how each kind is written in JSON.
KINDS = ("channels", "in_channels", "heads", "neurons")
_JSON_KIND = {"channels": True, "in_channels": False, "heads": "heads", "neurons": "neurons"}
_KIND_OF_JSON = {"heads": "heads", "neurons": "neurons"}


def encode_removed(removed: Iterable[int], n: int) -> str:
    """Removed indices of ``n`` units as a fixed-width hex bitmask (bit i: unit i removed).

    Example:
        >>> encode_removed({0, 3}, 12), decode_removed("009")
        ('009', [0, 3])
    """
    value = sum(1 << int(i) for i in set(removed))
    return format(value, "x").zfill((n + 3) // 4)


def decode_removed(mask: str | list) -> list[int]:
    """Indices of a bitmask from :func:`encode_removed` (a list of indices passes through)."""
    if isinstance(mask, list):
        return [int(i) for i in mask]
    value = int(mask, 16)
    return [i for i in range(value.bit_length()) if value >> i & 1]


@dataclass(frozen=True)
class HistoryEntry:
    """Indices removed from one structured unit.

    ``digits`` is the width of the hex bitmask written for it (fixed per unit, so a
    history's size depends on the model only); ``None`` writes a list of indices,
    as files of earlier versions did.
    """

    unit: str
    kind: str
    removed: tuple[int, ...]
    digits: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise PruningError(
                f"The 'kind' of a history entry must be one of {', '.join(KINDS)}. "
                f"Got {self.kind!r} instead."
            )

    @classmethod
    def of(cls, unit: str, kind: str, removed: Iterable[int], *, units: int) -> HistoryEntry:
        """The entry of ``unit`` (``units`` long originally) with ``removed`` gone."""
        return cls(unit, kind, tuple(sorted({int(i) for i in removed})), (units + 3) // 4)

    def to_json(self) -> list:
        """``[unit, kind, removed]`` as stored in the weights file."""
        if self.digits is None:
            removed: str | list[int] = list(self.removed)
        else:
            removed = encode_removed(self.removed, 4 * self.digits)
        return [self.unit, _JSON_KIND[self.kind], removed]

    @classmethod
    def from_json(cls, value: Sequence) -> HistoryEntry:
        """The entry of one ``[unit, kind, removed]`` list (the inverse of :meth:`to_json`)."""
        if not (isinstance(value, list) and len(value) == 3 and isinstance(value[0], str)):
            raise PruningError(
                f"A history entry must be [unit name, kind, removed units]. Got {value!r:.200} instead."
            )
        unit, kind, removed = value
        if isinstance(kind, bool):
            kind = "channels" if kind else "in_channels"
        elif kind in _KIND_OF_JSON:
            kind = _KIND_OF_JSON[kind]
        else:
            raise PruningError(
                f"The kind of history entry '{unit:.200}' must be true, false, 'heads' or "
                f"'neurons'. Got {kind!r:.200} instead."
            )
        if isinstance(removed, str):
            return cls(unit, kind, tuple(decode_removed(removed)), len(removed))
        return cls(unit, kind, tuple(decode_removed(removed)))


def as_history(history: Iterable[HistoryEntry | list] | None) -> list[HistoryEntry]:
    """``history`` as entries; lists in the JSON form are decoded (see :meth:`HistoryEntry.from_json`)."""
    return [
        entry if isinstance(entry, HistoryEntry) else HistoryEntry.from_json(entry)
        for entry in history or ()
    ]


def history_to_json(history: Iterable[HistoryEntry | list] | None) -> str:
    """The JSON text of ``history``, as the weights file stores it.

    Example:
        >>> history_to_json([HistoryEntry.of("conv1", "channels", [1], units=8)])
        '[["conv1", true, "02"]]'
    """
    return json.dumps([entry.to_json() for entry in as_history(history)])
