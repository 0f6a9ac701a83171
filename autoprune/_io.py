"""File I/O with two promises: writes are atomic, and weights never go through pickle.

Every artifact is written to a temporary file in the same directory and renamed
into place, so a crash leaves either the old file or the new one, never half of
one. Weights are safetensors; a ``.pt``/``.pth`` state_dict is read with
``torch.load(weights_only=True)`` and nothing else.

Example:
    >>> import tempfile, torch, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> save_weights(d / "w.safetensors", {"w": torch.ones(2)})
    >>> load_weights(d / "w.safetensors")["w"].tolist()
    [1.0, 1.0]
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from autoprune.errors import AutopruneError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; an artifact is read by other users too
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())  # on disk before the rename: a crash leaves old or new, whole
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Atomically write ``text`` to ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Atomically write ``data`` to ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Atomically write ``obj`` as indented JSON."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """Read JSON, with a clear error for a missing or truncated file."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise AutopruneError(f"File not found: {path}") from exc
    except json.JSONDecodeError as exc:
        raise AutopruneError(f"{path} is not valid JSON (truncated or edited?): {exc}") from exc


def describe_parse_error(exc: BaseException) -> str:
    """One line saying why a YAML/JSON parser (or writer) gave up, with the line and column when known.

    Example:
        >>> import json
        >>> try:
        ...     json.loads('{"a": ')
        ... except ValueError as exc:
        ...     describe_parse_error(exc)
        'Expecting value: line 1 column 7 (char 6)'
    """
    problem, mark = getattr(exc, "problem", None), getattr(exc, "problem_mark", None)
    if problem and mark is not None:  # a yaml MarkedYAMLError: its str() spans several lines
        text = f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
        context = getattr(exc, "context", None)
        text = f"{text} ({context})" if context else text
    elif isinstance(exc, RecursionError):
        text = "nested too deeply"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


PARSE_ERRORS = (
    ValueError,
    LookupError,
    AttributeError,
    RecursionError,
)  # what YAML/JSON parsers raise besides their own


def read_data_file(path: str | os.PathLike, *, error: type[AutopruneError] = AutopruneError) -> Any:
    """Parse a YAML file (JSON when the name ends in .json); a bad file is ``error`` naming it and the spot."""
    import yaml

    path = Path(path)
    language = "JSON" if path.suffix == ".json" else "YAML"
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise error(
            f"{path} is not a text file in UTF-8 (truncated or binary?): {describe_parse_error(exc)}"
        ) from exc
    try:
        return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, *PARSE_ERRORS) as exc:
        raise error(
            f"{path} is not valid {language} (truncated or edited?): {describe_parse_error(exc)}"
        ) from exc


CACHE_ENV = "AUTOPRUNE_CACHE_DIR"


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """The cache root: ``override``, else $AUTOPRUNE_CACHE_DIR, else ~/.cache/autoprune."""
    if override is not None:
        return Path(override)
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path.home() / ".cache" / "autoprune"


def save_weights(
    path: str | os.PathLike,
    state_dict: dict[str, torch.Tensor],
    metadata: dict[str, str] | None = None,
) -> None:
    """Atomically save a state_dict as safetensors."""
    from safetensors.torch import save_file

    tensors = {name: t.detach().contiguous().clone() for name, t in state_dict.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def load_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load a state_dict from safetensors, or from a ``.pt`` file without unpickling objects."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise AutopruneError(f"Weights file not found: {path}")
    if path.suffix == ".safetensors":
        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise AutopruneError(
                f"{path} is not a readable safetensors file (truncated?): {exc}"
            ) from exc
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # the weights-only unpickler refuses anything but tensors
        raise AutopruneError(
            f"{path} could not be loaded as a plain state_dict (weights only, no pickled objects): "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        ) from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise AutopruneError(f"{path} does not hold a state_dict of tensors.")
    return state
