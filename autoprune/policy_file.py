"""Policy files: a versioned, validated, human-readable document around a Policy.

A policy file (YAML, or JSON by extension) holds:

* ``schema_version`` (this module writes :data:`SCHEMA_VERSION`) and ``kind``;
* ``policy``: per-layer entries and global settings (:class:`autoprune.policy.Policy`);
* ``fingerprint``: the prunable layers (names and weight shapes) it was found on;
* ``provenance``: autoprune, torch and optuna versions, seed, task, budget,
  machine, thread count, model builder, time;
* ``results``: the measurements that justified it.

Loading validates everything and raises :class:`autoprune.errors.PolicyError`
with the field and the value; a bare policy mapping (schema 0, no wrapper) is
migrated, a newer schema is refused.

Example:
    >>> import tempfile, pathlib
    >>> from autoprune.policy import Policy
    >>> doc = PolicyDocument(Policy.uniform(["fc1"], 0.5), fingerprint={"fc1": [128, 64]})
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "policy.yaml"
    >>> save_policy(path, doc)
    >>> load_policy(path).policy == doc.policy
    True
"""

from __future__ import annotations

import datetime
import functools
import json
import platform
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from autoprune._io import describe_parse_error
from autoprune._validation import check_plain_data, shorten
from autoprune.errors import PolicyError
from autoprune.policy import Policy, check_provenance, printable

SCHEMA_VERSION = 1
KIND = "autoprune-policy"
# Besides yaml.YAMLError, what the parsers raise on malformed text: json.JSONDecodeError and, from
# PyYAML's constructors, ValueError (``!!int x``, an integer of more than 4300 digits), KeyError
# (``!!bool maybe``), IndexError (``!!int ''``), AttributeError (``!!timestamp 1``); both parsers
# raise RecursionError when nested too deeply.
MAX_RESULT_ITEMS = 4096  # entries of a policy file's results, nested ones included
MAX_RESULT_DEPTH = 5


@dataclass
class PolicyDocument:
    """A policy with its fingerprint, provenance and results."""

    policy: Policy
    fingerprint: dict[str, list[int]] = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    results: dict = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict:
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": KIND,
            "policy": self.policy.to_dict(),
            "fingerprint": {name: list(shape) for name, shape in self.fingerprint.items()},
            "provenance": self.provenance,
            "results": self.results,
        }


def fingerprint(model: nn.Module) -> dict[str, list[int]]:
    """Names and weight shapes of the prunable layers, in order."""
    from autoprune.introspect import prunable_layers

    return {name: list(layer.weight.shape) for name, layer in prunable_layers(model).items()}


def check_fingerprint(expected: dict[str, list[int]], model: nn.Module) -> None:
    """Raise PolicyError naming the first layer whose name or shape differs."""
    actual = fingerprint(model)
    for name, shape in expected.items():
        if name not in actual:
            raise PolicyError(
                f"The policy was found on a model with layer '{printable(name)}' {tuple(shape)}, which this model does not have "
                f"(its prunable layers: {', '.join(actual)})."
            )
        if list(actual[name]) != list(shape):
            raise PolicyError(
                f"Layer '{printable(name)}' has weight shape {tuple(actual[name])}, but the policy was found on shape {tuple(shape)}."
            )
    extra = [n for n in actual if n not in expected]
    if expected and extra:
        raise PolicyError(
            f"The model has layer '{extra[0]}' {tuple(actual[extra[0]])}, which the policy's model did not have."
        )


def provenance(**extra) -> dict:
    """Versions, machine and time, plus ``extra`` (task, budget, seed, ...)."""
    import torch

    try:
        import optuna

        optuna_version = optuna.__version__
    except ImportError:
        optuna_version = None
    import autoprune

    return {
        "autoprune": autoprune.__version__,
        "torch": str(torch.__version__),
        "optuna": optuna_version,
        "python": platform.python_version(),
        "machine": f"{platform.system()} {platform.machine()} ({platform.node()})",
        "threads": torch.get_num_threads(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **extra,
    }


@functools.cache
def _dumper():
    """yaml's SafeDumper writing a value met twice in full each time, never as an anchor and alias."""
    import yaml

    class NoAliasDumper(yaml.SafeDumper):
        def ignore_aliases(self, data) -> bool:
            return True  # autoprune's own loader refuses anchors and aliases

    return NoAliasDumper


def _dump(path: Path, data: dict) -> str:
    import yaml

    try:
        if path.suffix == ".json":
            return json.dumps(data, indent=2, default=str) + "\n"
        return yaml.dump(data, Dumper=_dumper(), sort_keys=False, default_flow_style=None)
    except (TypeError, ValueError, yaml.YAMLError) as exc:
        raise PolicyError(
            f"Cannot write {path}: its provenance or results hold a value {'JSON' if path.suffix == '.json' else 'YAML'} "
            f"cannot store ({describe_parse_error(exc)})."
        ) from exc


def save_policy(path: str | Path, document: PolicyDocument | Policy) -> None:
    """Write a policy file atomically (YAML, or JSON when the name ends in .json)."""
    from autoprune._io import write_text

    if isinstance(document, Policy):
        document = PolicyDocument(document)
    path = Path(path)
    write_text(path, _dump(path, document.to_dict()))


DOCUMENT_FIELDS = ("schema_version", "kind", "policy", "fingerprint", "provenance", "results")


def parse_policy_document(data, *, source: str = "policy") -> PolicyDocument:
    """Validate plain data (from a file) into a PolicyDocument.

    ``provenance`` is a small mapping of plain values (:func:`autoprune.policy.check_provenance`);
    ``results`` one of at most :data:`MAX_RESULT_ITEMS` entries, :data:`MAX_RESULT_DEPTH` levels deep.

    Example:
        >>> parse_policy_document({"layers": {"fc1": {"sparsity": 0.5}}}).schema_version
        1
        >>> parse_policy_document({"schema_version": 9, "policy": {}}, source="p.yaml")
        Traceback (most recent call last):
        ...
        autoprune.errors.PolicyError: p.yaml: schema version 9 is newer than this autoprune understands (1); upgrade autoprune to read it.
    """
    source = shorten(source, text=True)
    data = _migrate(data, source)
    version = _check_version(data["schema_version"], source)
    _check_envelope(data, source)
    policy = _read_policy(data["policy"], source)
    raw = _read_fingerprint(data.get("fingerprint") or {}, source)
    provenance = _plain(check_provenance(data.get("provenance") or {}, source=source))
    results = _read_results(data.get("results") or {}, source)
    return PolicyDocument(policy, dict(raw), provenance, results, version)


def _migrate(data, source: str) -> dict:
    """``data`` as a document of the current layout: a bare policy (schema 0) is wrapped."""
    if not isinstance(data, dict):
        raise PolicyError(
            f"{source}: a policy file holds a mapping. Got {type(data).__name__} instead."
        )
    if "schema_version" in data:
        return data
    if "layers" in data:  # schema 0: a bare policy, as Policy.to_dict() writes it
        return {"schema_version": SCHEMA_VERSION, "kind": KIND, "policy": data}
    raise PolicyError(
        f"{source}: missing 'schema_version' (and no 'layers' to read as a bare policy)."
    )


def _check_version(version, source: str) -> int:
    if isinstance(version, bool) or not isinstance(version, int):
        raise PolicyError(
            f"{source}: 'schema_version' must be an integer. Got {shorten(version)} instead."
        )
    if version > SCHEMA_VERSION:
        raise PolicyError(
            f"{source}: schema version {shorten(version)} is newer than this autoprune understands ({SCHEMA_VERSION}); "
            "upgrade autoprune to read it."
        )
    if version < 1:
        raise PolicyError(
            f"{source}: schema version {shorten(version)} is not supported; the oldest readable is 1."
        )
    return version


def _check_envelope(data: dict, source: str) -> None:
    """No unknown field, the right ``kind``, and a ``policy`` field."""
    unknown = sorted(set(data) - set(DOCUMENT_FIELDS), key=str)
    if unknown:
        raise PolicyError(f"{source}: unknown field(s) {shorten(unknown)}.")
    if data.get("kind", KIND) != KIND:
        raise PolicyError(
            f"{source}: 'kind' must be {KIND!r}. Got {shorten(data.get('kind'))} instead."
        )
    if "policy" not in data:
        raise PolicyError(
            f"{source}: missing the 'policy' field (the per-layer entries and global settings)."
        )


def _read_policy(data, source: str) -> Policy:
    try:
        return Policy.from_dict(data)
    except PolicyError as exc:
        raise PolicyError(f"{source}: {exc}") from exc
    except (TypeError, ValueError) as exc:
        raise PolicyError(f"{source}: invalid policy: {shorten(exc, text=True)}") from exc


def _read_fingerprint(raw, source: str) -> dict:
    if not isinstance(raw, dict) or not all(
        isinstance(k, str)
        and isinstance(v, list)
        and all(isinstance(d, int) and not isinstance(d, bool) for d in v)
        for k, v in raw.items()
    ):
        raise PolicyError(
            f"{source}: 'fingerprint' must map layer names to lists of integers (weight shapes)."
        )
    return raw


def _read_results(raw, source: str) -> dict:
    try:
        results = check_plain_data(
            "results",
            raw,
            max_items=MAX_RESULT_ITEMS,
            max_depth=MAX_RESULT_DEPTH,
            error=PolicyError,
        )
    except PolicyError as exc:
        raise PolicyError(f"{source}: {exc}") from None
    return _plain(results)


def _plain(value):
    """A copy of plain data, tuples as lists, so the document shares nothing with its input."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def load_policy(path: str | Path) -> PolicyDocument:
    """Read and validate a policy file (YAML or JSON); errors name the file and the field."""
    from autoprune._io import read_data_file

    path = Path(path)
    data = read_data_file(path, error=PolicyError, what="Policy file")
    return parse_policy_document(data, source=str(path))
