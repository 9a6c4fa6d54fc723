"""From a composed config to cached pictures, splits and loaders."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader

from astro_exp.anomaly.sets import split_holdout
from astro_exp.data.cache import build_cache
from astro_exp.data.loaders import CachedBatches, make_loader
from astro_exp.data.splits import SPLIT_NAMES, TEST, TRAIN, VAL, stratified_split
from astro_exp.engine import distributed
from astro_exp.errors import DataError
from astro_exp.sources import ImageSet, build_imageset

log = logging.getLogger(__name__)


@dataclass
class DataModule:
    """Cached pictures of one source with their split; hands out loaders per split."""

    imageset: ImageSet
    images: np.ndarray  # (N, 3, S, S) uint8 memmap
    split: np.ndarray  # (N,) 0 train / 1 val / 2 test / -1 unreadable
    batch_size: int
    seed: int
    num_workers: int = 0
    pin_memory: bool = False
    holdout: ImageSet | None = None  # classes kept out of training (anomaly.holdout_classes)

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

    def loader(self, split: str, shuffle: bool | None = None, batch_size: int | None = None) -> DataLoader:
        shuffle = split == "train" if shuffle is None else shuffle
        return make_loader(
            CachedBatches(self.images, self.targets), self.indices(split),
            batch_size or self.batch_size, shuffle=shuffle, seed=self.seed,
            num_workers=self.num_workers, pin_memory=self.pin_memory,
            rank=distributed.rank(), world_size=distributed.world_size(),
        )  # fmt: skip

    def summary(self) -> dict[str, int]:
        return {f"data/n_{name}": int((self.split == code).sum()) for code, name in SPLIT_NAMES.items()}


def build_datamodule(cfg: Mapping, cache_dir: str | Path, pin_memory: bool = False, progress: bool = True) -> DataModule:
    """``cfg`` is the whole run config (source, preprocess, data, seed)."""
    imageset = build_imageset(cfg["source"])
    holdout_classes = (cfg.get("anomaly") or {}).get("holdout_classes") or []
    imageset, holdout = split_holdout(imageset, holdout_classes)
    pre = cfg["preprocess"]
    images, failed = build_cache(imageset, int(pre["image_size"]), str(pre["resize"]), cache_dir, progress=progress)
    data = cfg["data"]
    if imageset.split is not None:
        split = imageset.split.astype(np.int8).copy()
    else:
        split = stratified_split(imageset.targets, float(data["val_fraction"]), float(data["test_fraction"]), int(cfg["seed"]))
    if failed:
        first = next(iter(failed.values()))
        log.warning("%d of %d pictures could not be read and are left out (first: %s)", len(failed), len(split), first)
        split[list(failed)] = -1
    for code in (TRAIN, VAL, TEST):
        if not (split == code).any():
            raise DataError(
                f"the {SPLIT_NAMES[code]} split is empty ({len(split)} pictures); "
                "add pictures or change data.val_fraction / data.test_fraction"
            )
    return DataModule(
        imageset=imageset, images=images, split=split, batch_size=int(data["batch_size"]),
        seed=int(cfg["seed"]), num_workers=int(data.get("num_workers", 0)), pin_memory=pin_memory,
        holdout=holdout,
    )  # fmt: skip
