"""The contract between a source and the tensor cache."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Task = Literal["multiclass", "multilabel"]


@dataclass
class ImageSet:
    """N pictures with their targets, described well enough to cache them once.

    ``load(i, size)`` returns picture ``i`` as an RGB ``uint8`` array of shape (H, W, 3).
    ``size`` is the edge the cache will resize to; procedural sources render at that
    size directly, file sources ignore it and return the decoded file.
    ``fingerprint`` must change whenever any picture or target changes: it keys the cache.
    """

    name: str
    classes: list[str]
    task: Task
    ids: list[str]
    targets: np.ndarray  # (N,) int64 class index, or (N, C) float32 multi-hot
    fingerprint: str
    load: Callable[[int, int], np.ndarray]
    split: np.ndarray | None = None  # optional fixed split: 0 train, 1 val, 2 test
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)
