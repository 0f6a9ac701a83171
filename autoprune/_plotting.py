"""Matplotlib without a screen: a figure to draw on, saved atomically as PNG.

Example:
    >>> import tempfile, pathlib
    >>> plt, fig, ax = figure()
    >>> _ = ax.plot([0, 1], [0, 1])
    >>> save(plt, fig, pathlib.Path(tempfile.mkdtemp()) / "line.png").suffix
    '.png'
"""

from __future__ import annotations

from pathlib import Path


def figure(width: float = 7.0, height: float = 4.5):
    """``(pyplot, figure, axes)`` on the Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height), dpi=110)
    return plt, fig, ax


def save(plt, fig, path: str | Path) -> Path:
    """Lay the figure out, write it to ``path`` atomically and close it."""
    from autoprune._io import atomic_path

    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(path)
