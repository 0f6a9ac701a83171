"""Progress bars (tqdm) that stay quiet when asked or when output is not a terminal.

Example:
    >>> bar = progress_bar(total=3, desc="demo", enabled=False)
    >>> bar.update(3); bar.close()
"""

from __future__ import annotations

import os
import sys

from tqdm.auto import tqdm


def progress_bar(*, total: int | None, desc: str, unit: str = "it", enabled: bool = True, **kwargs):
    """A tqdm bar on stderr; disabled when ``enabled`` is False or AUTOPRUNE_NO_PROGRESS is set."""
    disabled = (not enabled) or bool(os.environ.get("AUTOPRUNE_NO_PROGRESS"))
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        disable=disabled,
        file=sys.stderr,
        dynamic_ncols=True,
        leave=False,
        **kwargs,
    )
