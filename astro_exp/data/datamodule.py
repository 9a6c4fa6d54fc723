"""From an :class:`ImageSet` to cached pictures, splits and loaders.

The DataModule knows pictures, not runs: it is handed the ImageSet (sources), the ``data``
and ``preprocess`` config groups and this process's rank, so it imports neither the
sources, nor the anomaly sets, nor the distributed engine.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader

from astro_exp.data.cache import build_cache
from astro_exp.data.imageset import ImageSet
from astro_exp.data.loaders import CachedBatches, make_loader
from astro_exp.data.splits import SPLIT_NAMES, TEST, TRAIN, VAL, fold_split, stratified_split
from astro_exp.errors import DataError

log = logging.getLogger(__name__)


@dataclass
class DataModule:
    """Cached pictures of one source with their split; hands out loaders per split."""

    imageset: ImageSet
    images: np.ndarray  # (N, 3, S, S) uint8 memmap
    split: np.ndarray  # (N,) 0 train / 1 val / 2 test / -1 unreadable
    batch_size: int
    seed: int
    resize: str  # the policy the cache was built with (the anomaly sets reuse it)
    cache_dir: Path  # the tensor cache the pictures came from
    num_workers: int = 0
    pin_memory: bool = False
    rank: int = 0  # this process under DDP; each rank loads its share of every split
    world_size: int = 1

    @property
    def classes(self) -> list[str]:
        return self.imageset.classes

    @property
    def task(self) -> str:
        return self.imageset.task

    @property
    def targets(self) -> np.ndarray:
        return self.imageset.targets

    @property
    def image_size(self) -> int:
        return int(self.images.shape[-1])

    def indices(self, split: str) -> np.ndarray:
        code = {v: k for k, v in SPLIT_NAMES.items()}[split]
        return np.flatnonzero(self.split == code)

    def loader(
        self, split: str, shuffle: bool | None = None, batch_size: int | None = None
    ) -> DataLoader:
        shuffle = split == "train" if shuffle is None else shuffle
        return make_loader(
            CachedBatches(self.images, self.targets),
            self.indices(split),
            batch_size or self.batch_size,
            shuffle=shuffle,
            seed=self.seed,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            rank=self.rank,
            world_size=self.world_size,
        )

    def summary(self) -> dict[str, int]:
        return {
            f"data/n_{name}": int((self.split == code).sum()) for code, name in SPLIT_NAMES.items()
        }


def build_datamodule(
    imageset: ImageSet,
    data: Mapping,
    preprocess: Mapping,
    *,
    seed: int,
    cache_dir: str | Path,
    rank: int = 0,
    world_size: int = 1,
    pin_memory: bool = False,
    progress: bool = True,
) -> DataModule:
    """Cache ``imageset`` at ``preprocess.image_size`` and split it by ``data``'s fractions.

    ``imageset`` is what training sees: classes held out for the anomaly stage are already
    gone (:func:`astro_exp.anomaly.sets.split_holdout`, called by the run before this).
    """
    image_size, resize = int(preprocess["image_size"]), str(preprocess["resize"])
    images, failed = build_cache(imageset, image_size, resize, cache_dir, progress=progress)
    if data.get("folds"):  # cross-validation: test = one fold, the same pictures in every run
        split = fold_split(
            imageset.ids,
            imageset.targets,
            int(data["folds"]),
            int(data["fold"]),
            float(data["val_fraction"]),
            int(seed),
        )
    elif imageset.split is not None:
        split = imageset.split.astype(np.int8).copy()
    else:
        split = stratified_split(
            imageset.targets, float(data["val_fraction"]), float(data["test_fraction"]), int(seed)
        )
    if failed:
        first = next(iter(failed.values()))
        log.warning(
            "%d of %d pictures could not be read and are left out (first: %s)",
            len(failed),
            len(split),
            first,
        )
        split[list(failed)] = -1
    for code in (TRAIN, VAL, TEST):
        if not (split == code).any():
            raise DataError(
                f"the {SPLIT_NAMES[code]} split is empty ({len(split)} pictures); "
                "add pictures or change data.val_fraction / data.test_fraction"
            )
    return DataModule(
        imageset=imageset,
        images=images,
        split=split,
        batch_size=int(data["batch_size"]),
        seed=int(seed),
        num_workers=int(data["num_workers"]),
        pin_memory=pin_memory,
        rank=int(rank),
        world_size=int(world_size),
        resize=resize,
        cache_dir=Path(cache_dir),
    )
