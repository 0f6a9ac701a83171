"""The one way autoprune parses YAML and JSON a user hands it: strict and bounded.

* Aliases and anchors (``&name``, ``*name``) are refused: a few hundred bytes of
  them can expand to gigabytes (a "billion laughs"), and autoprune's own files
  never need them.
* A key given twice in one mapping is refused instead of silently keeping the last.
* Numbers in exponent form without a dot (``1e-3``) are read as numbers, as in
  YAML 1.2 and JSON; YAML 1.1 would read them as text.
* Text longer than :data:`MAX_BYTES` is refused before it is parsed.

Errors are :class:`yaml.YAMLError` (with the line and column) or ``ValueError``
(JSON); :class:`~autoprune.errors.Refused` marks the refusals above.

Example:
    >>> load_yaml("lr: 1e-3")
    {'lr': 0.001}
    >>> load_yaml("a: &x [1]\\nb: *x")
    Traceback (most recent call last):
    ...
    autoprune._yaml.RefusedYAML: line 1, column 4: anchors and aliases (&name, *name) are not allowed; write each value out in full
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.events import AliasEvent
from yaml.nodes import MappingNode

from autoprune.errors import Refused

MAX_BYTES = 4 * 2**20  # the largest file or text parsed: a policy of 10,000 layers is about 1 MB


class RefusedYAML(ComposerError, Refused):
    """A refusal at a known line and column of a YAML text.

    The one error class outside :mod:`autoprune.errors`: it is also PyYAML's own
    ``ComposerError`` (line and column included), and ``errors`` imports no YAML.
    """

    def __str__(self) -> str:
        mark = self.problem_mark
        return f"line {mark.line + 1}, column {mark.column + 1}: {self.problem}"


_EXPONENT_FLOAT = re.compile(r"^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+$")
MERGE_TAG = "tag:yaml.org,2002:merge"


class StrictLoader(yaml.SafeLoader):
    """SafeLoader without anchors, aliases or repeated keys; ``1e-3`` is a number."""

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, AliasEvent) or getattr(event, "anchor", None) is not None:
            raise RefusedYAML(
                None,
                None,
                "anchors and aliases (&name, *name) are not allowed; write each value out in full",
                event.start_mark,
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        if isinstance(node, MappingNode):
            seen: dict[Any, Any] = {}
            for key_node, _ in node.value:
                if key_node.tag == MERGE_TAG:
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node)
                except TypeError:  # unhashable: SafeLoader says so below
                    continue
                if first is not key_node:
                    raise RefusedYAML(
                        None,
                        None,
                        f"the key {_shown(key)} is given twice in one mapping "
                        f"(first on line {first.start_mark.line + 1}); give each key once",
                        key_node.start_mark,
                    )
        return super().construct_mapping(node, deep=deep)


StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", _EXPONENT_FLOAT, list("-+0123456789.")
)


def _shown(value: Any) -> str:
    from autoprune._validation import shorten

    return shorten(value, 80)


def _check_size(text: str | bytes) -> None:
    if len(text) > MAX_BYTES:
        raise Refused(
            f"it holds {len(text):,} characters; autoprune reads at most {MAX_BYTES:,} "
            "(policies and search spaces are far smaller)"
        )


def load_yaml(text: str) -> Any:
    """Parse one YAML document strictly (see the module docstring).

    Example:
        >>> load_yaml("{fc1: 0.5, fc1: 0.7}")
        Traceback (most recent call last):
        ...
        autoprune._yaml.RefusedYAML: line 1, column 12: the key 'fc1' is given twice in one mapping (first on line 1); give each key once
    """
    _check_size(text)
    return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - StrictLoader is a SafeLoader


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise Refused(f"the key {_shown(key)} is given twice in one object; give each key once")
        out[key] = value
    return out


def load_json(text: str) -> Any:
    """Parse JSON, refusing a key given twice in one object.

    Example:
        >>> load_json('{"a": 1, "a": 2}')
        Traceback (most recent call last):
        ...
        autoprune.errors.Refused: the key 'a' is given twice in one object; give each key once
    """
    _check_size(text)
    return json.loads(text, object_pairs_hook=_unique_pairs)
