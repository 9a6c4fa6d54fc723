"""The embedded default data: procedurally rendered sky pictures (see sky_render).

Picture ``i`` is rendered from its own generator seeded by ``(seed, i)``, so any item can
be rendered alone, in any order, in parallel, and always comes out the same.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from astro_exp.data.imageset import ImageSet, Task
from astro_exp.errors import ConfigError
from astro_exp.sources import sky_render


class SyntheticSource:
    """``per_class`` pictures of each class (multiclass), or ``per_class * C`` mixed
    scenes whose label set is drawn at random (multilabel)."""

    def __init__(
        self,
        classes: Sequence[str] = sky_render.CLASSES,
        per_class: int = 600,
        seed: int = 0,
        task: Task = "multiclass",
        name: str = "synthetic",
    ) -> None:
        unknown = [c for c in classes if c not in sky_render.CLASSES]
        if unknown:
            raise ConfigError(
                f"source.classes has unknown classes {unknown}; the renderer knows {list(sky_render.CLASSES)}"
            )
        if per_class < 1:
            raise ConfigError(f"source.per_class={per_class} must be >= 1")
        if task not in ("multiclass", "multilabel"):
            raise ConfigError(f"task={task!r} must be multiclass or multilabel")
        self.classes = list(classes)
        self.per_class = int(per_class)
        self.seed = int(seed)
        self.task = task
        self.name = name

    def _fingerprint(self, kind: str) -> str:
        raw = f"{sky_render.RENDER_VERSION}|{kind}|{self.classes}|{self.per_class}|{self.seed}|{self.task}"
        return hashlib.sha256(raw.encode()).hexdigest()

    def labels_multilabel(self, n: int) -> np.ndarray:
        """Random non-empty label sets, each size 1..C equally likely."""
        c = len(self.classes)
        rng = np.random.default_rng([self.seed, 7919])
        out = np.zeros((n, c), dtype=np.float32)
        for i in range(n):
            k = rng.integers(1, c + 1)
            out[i, rng.choice(c, size=k, replace=False)] = 1.0
        return out

    def imageset(self) -> ImageSet:
        c = len(self.classes)
        n = self.per_class * c
        ids = [f"{self.name}-{self.seed}-{i:06d}" for i in range(n)]
        if self.task == "multiclass":
            targets = np.arange(n, dtype=np.int64) % c

            def load(i: int, size: int) -> np.ndarray:
                rng = np.random.default_rng([self.seed, i])
                return sky_render.render(self.classes[int(targets[i])], rng, size)
        else:
            targets = self.labels_multilabel(n)

            def load(i: int, size: int) -> np.ndarray:
                rng = np.random.default_rng([self.seed, i])
                kinds = [self.classes[j] for j in np.flatnonzero(targets[i])]
                return sky_render.render_multilabel(kinds, rng, size)

        return ImageSet(
            name=self.name,
            classes=self.classes,
            task=self.task,
            ids=ids,
            targets=targets,
            fingerprint=self._fingerprint("train"),
            load=load,
        )

    def anomaly_set(self, per_kind: int, kinds: Sequence[str] | None = None) -> ImageSet:
        """Pictures of kinds the renderer keeps out of training (comets, trails, flares, ...):
        this source is a :class:`~astro_exp.sources.protocols.HasAnomalySet`."""
        kinds = list(kinds or sky_render.ANOMALY_KINDS)
        n = per_kind * len(kinds)
        kind_of = [kinds[i % len(kinds)] for i in range(n)]

        def load(i: int, size: int) -> np.ndarray:
            return sky_render.render(
                kind_of[i], np.random.default_rng([self.seed, 1_000_003, i]), size
            )

        return ImageSet(
            name=f"{self.name}-anomalies",
            classes=kinds,
            task="multiclass",
            ids=[f"{self.name}-anomaly-{kind_of[i]}-{i:05d}" for i in range(n)],
            targets=np.arange(n, dtype=np.int64) % len(kinds),
            fingerprint=self._fingerprint(f"anomalies{per_kind}{kinds}"),
            load=load,
        )
