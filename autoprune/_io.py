"""File I/O that never leaves half a file: every write is atomic.

Every artifact is written to a temporary file in the same directory and renamed
into place, so a crash leaves either the old file or the new one, never half of
one. Weights files: :mod:`autoprune._weights`.

Example:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> write_json(d / "x.json", {"a": 1}); read_json(d / "x.json")
    {'a': 1}
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from autoprune.errors import AutopruneError

TEMP_SUFFIX = ".tmp"


def pid_alive(pid: int) -> bool:
    """True if a process ``pid`` runs on this machine (or may: it belongs to another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(directory: str | os.PathLike) -> list[Path]:
    """Delete the temporary files that killed writers left in ``directory``; returns them.

    A temporary file is ``.<name>.<pid>.<random>.tmp`` (see :func:`atomic_path`):
    it is stale when its writer's process is gone. Live writers' files stay.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / ".report.md.999999999.ab12.tmp").write_text("half")
        >>> [p.name for p in remove_stale_temporaries(d)]
        ['.report.md.999999999.ab12.tmp']
    """
    removed = []
    for path in Path(directory).glob(f".*{TEMP_SUFFIX}"):
        parts = path.name[: -len(TEMP_SUFFIX)].split(".")
        pid = parts[-2] if len(parts) >= 3 else ""
        if pid.isdigit() and not pid_alive(int(pid)) and path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{target.name}.{os.getpid()}.", suffix=TEMP_SUFFIX, dir=target.parent
    )
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

    The text is cut to 300 characters: a parser may quote the input.

    Example:
        >>> import json
        >>> try:
        ...     json.loads('{"a": ')
        ... except ValueError as exc:
        ...     describe_parse_error(exc)
        'Expecting value: line 1 column 7 (char 6)'
    """
    from autoprune._validation import shorten

    problem, mark = getattr(exc, "problem", None), getattr(exc, "problem_mark", None)
    if problem and mark is not None:  # a yaml MarkedYAMLError: its str() spans several lines
        text = f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
        context = getattr(exc, "context", None)
        text = f"{text} ({context})" if context else text
    elif isinstance(exc, RecursionError):
        text = "nested too deeply"
    else:
        text = str(exc) or type(exc).__name__
    return shorten(" ".join(text.split()), 300, text=True)


PARSE_ERRORS = (
    ValueError,
    LookupError,
    AttributeError,
    RecursionError,
)  # what YAML/JSON parsers raise besides their own


def _read_text(path: Path, what: str, error: type[AutopruneError]) -> str:
    """The text of a regular file of at most MAX_BYTES bytes, or ``error`` saying precisely why not."""
    import stat

    from autoprune._validation import shorten
    from autoprune._yaml import MAX_BYTES

    shown = shorten(str(path), text=True)
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise error(f"{what} {shown} is a directory; give the path of a YAML or JSON file.")
        if not stat.S_ISREG(info.st_mode):
            raise error(
                f"{what} {shown} is not a regular file (a device, pipe or socket); "
                "give the path of a YAML or JSON file."
            )
        if info.st_size > MAX_BYTES:
            raise error(
                f"{what} {shown} is {info.st_size:,} bytes; autoprune reads files of at most "
                f"{MAX_BYTES:,} bytes (policies and search spaces are far smaller)."
            )
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except FileNotFoundError as exc:
        raise error(f"{what} {shown} does not exist.") from exc
    except OSError as exc:
        raise error(f"{what} {shown} cannot be read: {exc.strerror or exc}.") from exc
    if len(data) > MAX_BYTES:
        raise error(f"{what} {shown} is over {MAX_BYTES:,} bytes; autoprune reads no larger file.")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(
            f"{shown} is not a text file in UTF-8 (truncated or binary?): {describe_parse_error(exc)}"
        ) from exc


def read_data_file(
    path: str | os.PathLike,
    *,
    error: type[AutopruneError] = AutopruneError,
    what: str = "File",
) -> Any:
    """Parse a YAML file (JSON when the name ends in .json); a bad file is ``error`` naming it and the spot.

    Parsing is strict (:mod:`autoprune._yaml`): no anchors or aliases, no key given
    twice, at most 4 MiB. ``what`` names the file in messages ("Policy file").

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> read_data_file(d)
        Traceback (most recent call last):
        ...
        autoprune.errors.AutopruneError: File ... is a directory; give the path of a YAML or JSON file.
    """
    import yaml

    from autoprune._validation import shorten
    from autoprune._yaml import Refused, load_json, load_yaml

    path = Path(path)
    language = "JSON" if path.suffix == ".json" else "YAML"
    text = _read_text(path, what, error)
    try:
        return load_json(text) if path.suffix == ".json" else load_yaml(text)
    except Refused as exc:
        raise error(f"{shorten(str(path), text=True)}: {describe_parse_error(exc)}.") from exc
    except (yaml.YAMLError, *PARSE_ERRORS) as exc:
        raise error(
            f"{shorten(str(path), text=True)} is not valid {language} (truncated or edited?): "
            f"{describe_parse_error(exc)}"
        ) from exc


CACHE_ENV = "AUTOPRUNE_CACHE_DIR"


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """The cache root: ``override``, else $AUTOPRUNE_CACHE_DIR, else ~/.cache/autoprune."""
    if override is not None:
        return Path(override)
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path.home() / ".cache" / "autoprune"
