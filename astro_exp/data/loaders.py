"""DataLoaders that yield whole uint8 batches straight from the tensor cache.

The sampler hands the dataset a *list* of indices, so a batch is one fancy-index of the
memmap (sorted, for locality) instead of ``batch_size`` ``__getitem__`` calls and a
collate: the loader's work is indexing a uint8 array, nothing more.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler


class CachedBatches(Dataset):
    """Batches of (uint8 images (B, 3, S, S), targets) indexed by a list of item ids."""

    def __init__(self, images: np.ndarray, targets: np.ndarray) -> None:
        self.images = images
        self.targets = torch.as_tensor(targets)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(
        self, idx: list[int] | np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        idx = np.sort(np.asarray(idx, dtype=np.int64))
        x = torch.from_numpy(np.ascontiguousarray(self.images[idx]))
        ids = torch.from_numpy(idx)
        return x, self.targets[ids], ids


class EpochBatchSampler(Sampler[list[int]]):
    """Batches of a fixed index set; the shuffle depends only on (seed, epoch).

    That makes an exact resume possible: epoch ``e`` after a restart sees the same
    batches as epoch ``e`` of an uninterrupted run. Call :meth:`set_epoch` each epoch.
    Under DDP each of ``world_size`` ranks takes every ``world_size``-th item of each
    global batch, so N processes see the same global batches as one process does.
    """

    def __init__(
        self,
        indices: np.ndarray,
        batch_size: int,
        shuffle: bool,
        seed: int,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.indices = np.asarray(indices, dtype=np.int64)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.rank, self.world_size = rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[list[int]]:
        order = self.indices
        if self.shuffle:
            rng = np.random.default_rng([self.seed, self.epoch])
            order = order[rng.permutation(len(order))]
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            if self.drop_last and len(batch) < self.batch_size:
                return
            if self.world_size > 1:
                if len(batch) < self.world_size:  # pad so every rank gets an item
                    batch = np.resize(batch, self.world_size)
                batch = batch[self.rank :: self.world_size]
            yield batch.tolist()

    def __len__(self) -> int:
        n = len(self.indices)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)


def make_loader(
    dataset: CachedBatches,
    indices: np.ndarray,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    num_workers: int = 0,
    pin_memory: bool = False,
    drop_last: bool = False,
    rank: int = 0,
    world_size: int = 1,
) -> DataLoader:
    sampler = EpochBatchSampler(indices, batch_size, shuffle, seed, drop_last, rank, world_size)
    return DataLoader(
        dataset,
        sampler=sampler,
        batch_size=None,  # the sampler already yields whole batches
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=num_workers > 0,
    )
