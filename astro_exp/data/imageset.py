"""The contract between a source and the tensor cache: :class:`ImageSet`.

It lives in ``data/`` (not ``sources/``) because everything after a source (the cache, the
splits, the anomaly sets) handles ImageSets and must not depend on where they came from.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from astro_exp.errors import ConfigError

log = logging.getLogger(__name__)

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

    def take(
        self,
        rows: np.ndarray,
        *,
        fingerprint: str,
        name: str | None = None,
        classes: Sequence[str] | None = None,
        targets: np.ndarray | None = None,
        task: Task | None = None,
    ) -> ImageSet:
        """The pictures at ``rows`` (in that order) as an ImageSet of their own.

        Per-item lists in ``meta`` (as long as the set) follow the rows; ``targets`` and
        ``classes`` replace this set's when the caller relabels (the anomaly holdout).
        The caller names the new ``fingerprint``: only it knows what makes the subset unique.
        """
        rows = np.asarray(rows, dtype=np.int64)
        n = len(self)
        meta = {
            k: ([v[i] for i in rows] if isinstance(v, list | tuple) and len(v) == n else v)
            for k, v in self.meta.items()
        }
        parent = self.load

        def load(i: int, size: int) -> np.ndarray:
            return parent(int(rows[i]), size)

        return ImageSet(
            name=self.name if name is None else name,
            classes=list(self.classes if classes is None else classes),
            task=self.task if task is None else task,
            ids=[self.ids[i] for i in rows],
            targets=self.targets[rows] if targets is None else targets,
            fingerprint=fingerprint,
            load=load,
            split=None if self.split is None else self.split[rows],
            meta=meta,
        )


def limit_imageset(imageset: ImageSet, limit: int | None) -> ImageSet:
    """At most ``limit`` pictures of ``imageset``, balanced over the classes (``source.limit``).

    Picture k of each class (by its first label) is kept before picture k+1 of any class, in
    the source's order, so the subset is deterministic, every class stays in it, and a
    synthetic set limited to ``C * n`` pictures is exactly the set of ``per_class=n``.
    """
    if limit is None or int(limit) >= len(imageset):
        return imageset
    limit = int(limit)
    if limit < 1:
        raise ConfigError(f"source.limit={limit} must be >= 1 (or null for every picture)")
    t = imageset.targets
    label = t if t.ndim == 1 else np.argmax(t, axis=1)
    rank = np.zeros(len(label), np.int64)
    seen: dict[int, int] = {}
    for i, c in enumerate(label.tolist()):
        rank[i] = seen.get(c, 0)
        seen[c] = rank[i] + 1
    rows = np.sort(np.lexsort((np.arange(len(rank)), rank))[:limit])
    log.info(
        "source.limit=%d: %d of %d pictures of %s", limit, len(rows), len(imageset), imageset.name
    )
    tag = hashlib.sha256(f"{imageset.fingerprint}|limit={limit}".encode()).hexdigest()
    return imageset.take(rows, fingerprint=tag)
