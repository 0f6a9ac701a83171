"""Output directories autoprune may write into: its own, new or empty ones, never a stranger's.

:func:`check_out` says whether a writer may put its files in a directory: a
new path, an empty directory, or one holding only the files that writer writes
(with ``overwrite``, any directory, replacing only those files). A file or a
link is never replaced, and the staging directory ``<out>.partial`` must hold
only the writer's files.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> out = Path(tempfile.mkdtemp()) / "pruned"
    >>> check_out(out) == out
    True
    >>> out.mkdir(); _ = (out / "notes.txt").write_text("mine")
    >>> try:
    ...     check_out(out)
    ... except AutopruneError as exc:
    ...     "already holds files autoprune did not write (notes.txt)" in str(exc)
    True
    >>> check_out(out, overwrite=True) == out
    True
"""

from __future__ import annotations

from pathlib import Path

from autoprune._echo import shorten
from autoprune.errors import AutopruneError

WEIGHTS_FILE = "model.safetensors"
POLICY_FILE = "policy.yaml"
PRUNED_FILES = (POLICY_FILE, WEIGHTS_FILE)  # what save_pruned writes


def staging_path(out: Path) -> Path:
    """``<out>.partial``: where files are written before they move into ``out``."""
    return out.with_name(out.name + ".partial")


def _is_ours(entry: Path, names: tuple[str, ...] = PRUNED_FILES) -> bool:
    """A plain file of ``names`` or a temporary file of its atomic write."""
    name = entry.name
    return (
        entry.is_file()
        and not entry.is_symlink()
        and (
            name in names or any(name.startswith(f".{f}.") and name.endswith(".tmp") for f in names)
        )
    )


def _foreign(directory: Path, names: tuple[str, ...] = PRUNED_FILES) -> list[str]:
    """Names of the entries of ``directory`` that are not ``names`` or their temporaries, sorted."""
    return sorted(entry.name for entry in directory.iterdir() if not _is_ours(entry, names))


def _listed(names: list[str]) -> str:
    shown = ", ".join(shorten(name, 60, text=True) for name in names[:3])
    return shown + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def _check_not_a_file(paths: list[tuple[Path, str]]) -> None:
    for path, role in paths:
        if path.is_symlink() or (path.exists() and not path.is_dir()):
            raise AutopruneError(
                f"The {role} path {shorten(path, text=True)} exists and is not a directory; autoprune never "
                "replaces it. Choose another --out."
            )


def _check_owned(out: Path, names: tuple[str, ...], *, overwrite: bool, writer: str) -> None:
    foreign = _foreign(out, names) if out.is_dir() else []
    if foreign and not overwrite:
        written = " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)
        raise AutopruneError(
            f"The output directory {shorten(out, text=True)} already holds files {writer} did not write "
            f"({_listed(foreign)}); pass --overwrite (overwrite=True) to write {written} "
            "into it, leaving the other files, or choose another --out."
        )
    for name in names:
        if name in foreign and ((out / name).is_symlink() or not (out / name).is_file()):
            raise AutopruneError(
                f"{shorten(out / name, text=True)} is not a file; autoprune never replaces it. Choose another --out."
            )


def check_out(
    out_dir: str | Path,
    *,
    overwrite: bool = False,
    names: tuple[str, ...] = PRUNED_FILES,
    staging: bool = True,
    writer: str = "autoprune",
) -> Path:
    """``out_dir`` as a Path if :func:`~autoprune.apply.save_pruned` may write there, else AutopruneError saying why.

    Allowed: a path that does not exist, an empty directory, or a directory holding
    only a pruned model's ``policy.yaml`` and ``model.safetensors``; with ``overwrite``,
    any directory (only those two files are replaced). A file or link is never
    replaced, and the staging directory ``<out>.partial`` must hold nothing else.
    Another writer (``writer``, e.g. export) passes the ``names`` of its files and
    ``staging=False`` when it writes straight into ``out_dir``.
    """
    out = Path(out_dir)
    _check_not_a_file([(out, "output")] + ([(staging_path(out), "staging")] if staging else []))
    _check_owned(out, names, overwrite=overwrite, writer=writer)
    if not staging:
        return out
    partial = staging_path(out)
    foreign = _foreign(partial) if partial.is_dir() else []
    if foreign:
        raise AutopruneError(
            f"The staging directory {shorten(partial, text=True)} holds files autoprune did not write "
            f"({_listed(foreign)}); move them away or choose another --out."
        )
    return out
