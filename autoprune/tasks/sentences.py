"""Real English sentences that ship with every Python: CPython's own documentation.

The sentences come from two texts installed with the interpreter itself:
``pydoc_data.topics`` (the language reference topics ``help()`` shows) and the
docstrings of the standard library's modules. They are split into sentences,
filtered (6 to 40 words, prose rather than code), de-duplicated and shuffled
with a fixed seed into disjoint train, validation and test sets.

Example:
    >>> train, val, test = sentence_splits(train=50, val=10, test=10)
    >>> len(train), len(val), len(test), len(set(train) & set(test))
    (50, 10, 10, 0)
"""

from __future__ import annotations

import ast
import functools
import random
import re
import sysconfig
from pathlib import Path

SKIP_PARTS = {"test", "tests", "idlelib", "lib2to3", "site-packages", "turtledemo", "dist-packages"}
CODE_CHARACTERS = set("*=<>{}[]|\\_`")


def _docstrings() -> list[str]:
    root = Path(sysconfig.get_paths()["stdlib"])
    texts = []
    for path in sorted(root.glob("*.py")) + sorted(root.glob("*/*.py")):
        if SKIP_PARTS & set(path.parts):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, OSError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                text = ast.get_docstring(node)
                if text:
                    texts.append(text)
    return texts


def _is_prose(sentence: str) -> bool:
    words = sentence.split()
    return (
        6 <= len(words) <= 40
        and sentence[0].isupper()
        and not (CODE_CHARACTERS & set(sentence))
        and sentence.count("(") == sentence.count(")")
        and sentence.count('"') % 2 == 0
    )


@functools.lru_cache(maxsize=1)
def all_sentences() -> tuple[str, ...]:
    """Every usable sentence, in a fixed order (before shuffling)."""
    import pydoc_data.topics

    text = " ".join([*pydoc_data.topics.topics.values(), *_docstrings()])
    pieces = re.split(r"(?<=[.!?])\s+", re.sub(r"\s+", " ", text))
    return tuple(dict.fromkeys(p.strip() for p in pieces if p.strip() and _is_prose(p.strip())))


def sentence_splits(
    *, train: int = 4000, val: int = 600, test: int = 600, seed: int = 0
) -> tuple[list[str], list[str], list[str]]:
    """Disjoint (train, validation, test) lists of sentences, seeded."""
    pool = list(all_sentences())
    if train + val + test > len(pool):
        from autoprune.errors import DataError

        raise DataError(
            f"Only {len(pool)} sentences are available; asked for {train + val + test}."
        )
    random.Random(seed).shuffle(pool)
    return pool[:train], pool[train : train + val], pool[train + val : train + val + test]
