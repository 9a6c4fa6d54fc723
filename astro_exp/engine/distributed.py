"""Distributed data parallel under ``torchrun``: one process per device, rank 0 writes.

``train.py`` works unchanged under ``torchrun --nproc_per_node=N train.py``: every rank
trains on its shard of each batch, evaluates its shard of val/test, and the logits are
gathered so all ranks compute identical metrics; only rank 0 logs, checkpoints and talks
to W&B, into one run folder.
"""

from __future__ import annotations

import os
from datetime import timedelta

import torch
import torch.distributed as dist


def env_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_distributed(device_type: str) -> tuple[int, int, int]:
    """Join the process group torchrun set up; returns (rank, world_size, local_rank)."""
    world = env_world_size()
    if world <= 1:
        return 0, 1, 0
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        if device_type == "cuda":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend, timeout=timedelta(minutes=30))
    return dist.get_rank(), dist.get_world_size(), local_rank


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def broadcast_object(obj):
    """Rank 0's value of ``obj`` on every rank."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_cat(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Concatenate each tensor over ranks (CPU tensors, any first-dim length per rank)."""
    if not is_distributed():
        return tensors
    parts: list = [None] * world_size()
    dist.all_gather_object(parts, [t.cpu() for t in tensors])
    return tuple(torch.cat([p[i] for p in parts]) for i in range(len(tensors)))


def mean_over_ranks(total: float, count: int) -> float:
    """A sample-weighted mean of per-rank sums (e.g. the epoch's training loss)."""
    if not is_distributed():
        return total / max(count, 1)
    t = torch.tensor([total, float(count)], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t[0] / t[1].clamp(min=1))


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
