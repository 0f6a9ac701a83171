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
import os
import sys

from autoprune.cli import _bench, _model, _production, _search
from autoprune.errors import AutopruneError


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command."""
    parser = argparse.ArgumentParser(
        prog="autoprune", description="Find the best pruning policy under a budget."
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for family in (_model, _search, _production, _bench):
        family.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``autoprune`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = args.debug or bool(os.environ.get("AUTOPRUNE_DEBUG"))
    try:
        return args.func(args)
    except AutopruneError as exc:
        if debug:
            raise
        print(f"autoprune: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("autoprune: interrupted", file=sys.stderr)
        return 130
