"""Progress bars for long work: lively on a terminal, a few lines in a log file."""

from __future__ import annotations

import sys
from collections.abc import Iterable

from tqdm.auto import tqdm


def progress(iterable: Iterable | None = None, enabled: bool = True, **kwargs) -> tqdm:
    """tqdm with a slower refresh when stderr is not a terminal (CI logs, nohup, Hydra -m)."""
    if not sys.stderr.isatty():
        kwargs.setdefault("mininterval", 15.0)
    return tqdm(iterable, disable=not enabled, dynamic_ncols=True, **kwargs)
