"""The ``autoprune`` command: a thin layer over the Python API.

Every user error is printed as one line (``autoprune: error: ...``) with exit
status 2; ``--debug`` shows the traceback instead. Each command family lives in
its own module and registers its sub-commands.

Example:
    $ autoprune inspect --task fashion-cnn
    $ autoprune search --task fashion-cnn --budget params=0.1
    $ autoprune apply final/policy.yaml --task fashion-cnn --out pruned/
"""

from __future__ import annotations

import argparse
import errno
import os
import sys

from autoprune.cli import _model, _production, _search
from autoprune.cli._args import check_args
from autoprune.errors import AutopruneError

# What to do about the file-system errors a command meets while reading or writing its files.
OS_ERROR_HINTS = {
    errno.ENOSPC: "the disk is full: free some space or write elsewhere (--out)",
    errno.EDQUOT: "the disk quota is exhausted: free some space or write elsewhere (--out)",
    errno.EROFS: "the file system is read-only: write elsewhere (--out)",
    errno.EACCES: "permission denied: write elsewhere (--out) or fix the permissions",
    errno.EPERM: "permission denied: write elsewhere (--out) or fix the permissions",
    errno.ENOTDIR: "a file stands where a directory is needed: choose another path",
    errno.EEXIST: "a file stands where a directory is needed: choose another path",
    errno.EISDIR: "a directory stands where a file is needed: choose another path",
    errno.ENAMETOOLONG: "the path is too long: choose a shorter one",
}


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command."""
    parser = argparse.ArgumentParser(
        prog="autoprune", description="Find the best pruning policy under a budget."
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for family in (_model, _search, _production):
        family.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``autoprune`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = args.debug or bool(os.environ.get("AUTOPRUNE_DEBUG"))
    try:
        check_args(args)
        return args.func(args)
    except AutopruneError as exc:
        if debug:
            raise
        print(f"autoprune: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except OSError as exc:  # the file system said no (full, read-only, a file in the way): one line
        if debug:
            raise
        print(f"autoprune: error: {describe_os_error(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("autoprune: interrupted", file=sys.stderr)
        return 130


def describe_os_error(exc: OSError) -> str:
    """One line naming the path, the system's reason and what to do.

    Example:
        >>> describe_os_error(OSError(errno.ENOSPC, "No space left on device", "run/x.json"))
        'run/x.json: No space left on device [ENOSPC]; the disk is full: free some space or write elsewhere (--out).'
    """
    from autoprune._validation import shorten

    paths = [p for p in (exc.filename, exc.filename2) if p is not None]
    where = " -> ".join(
        shorten(os.fsdecode(p) if isinstance(p, (str, bytes, os.PathLike)) else str(p), text=True)
        for p in paths
    )
    reason = exc.strerror or shorten(" ".join(str(exc).split()), text=True) or type(exc).__name__
    code = errno.errorcode.get(exc.errno, "") if exc.errno is not None else ""
    hint = OS_ERROR_HINTS.get(exc.errno, "check the path and try again")
    return f"{where + ': ' if where else ''}{reason}{f' [{code}]' if code else ''}; {hint}."
