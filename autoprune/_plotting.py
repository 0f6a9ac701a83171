"""Matplotlib without a screen: a figure to draw on, a legend off the data, saved atomically as PNG.

Figures use matplotlib's constrained layout, so labels and a legend placed by
:func:`legend_below` get room of their own: a legend never covers the data.

Example:
    >>> import tempfile, pathlib
    >>> plt, fig, ax = figure()
    >>> _ = ax.plot([0, 1], [0, 1], label="line")
    >>> legend_below(fig, ax) is not None
    True
    >>> save(plt, fig, pathlib.Path(tempfile.mkdtemp()) / "line.png").suffix
    '.png'
"""

from __future__ import annotations

from pathlib import Path


def figure(width: float = 7.0, height: float = 4.5):
    """``(pyplot, figure, axes)`` on the Agg backend, with constrained layout."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height), dpi=110, layout="constrained")
    return plt, fig, ax


def legend_below(fig, ax, *, ncols: int = 2, fontsize: float = 7):
    """The legend of ``ax``'s labelled artists under the plot, outside the axes (None: no labels)."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return None
    return fig.legend(
        handles, labels, loc="outside lower center", ncols=ncols, fontsize=fontsize, frameon=False
    )


def save(plt, fig, path: str | Path) -> Path:
    """Lay the figure out, write it to ``path`` atomically (nothing cut off) and close it."""
    from autoprune._io import atomic_path

    if fig.get_layout_engine() is None:
        fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight", pad_inches=0.1)
    plt.close(fig)
    return Path(path)
