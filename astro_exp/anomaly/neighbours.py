""" "Compared with what it has seen": the k nearest training pictures in embedding space.

Cosine distance (1 - cosine similarity) on the pre-logits embeddings: it ignores the
overall feature magnitude, which follows brightness and contrast more than content.
Exact brute force in chunks: unit vectors, so one torch matrix product of similarities and
``topk`` a chunk (on torch's threads, the model's: no second thread pool wakes up beside
it); a few thousand to 100k references take milliseconds a query batch, and exact answers
are easy to check.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch


def chunked_topk(
    queries: torch.Tensor,
    scores: Callable[[torch.Tensor], torch.Tensor],
    k: int,
    *,
    largest: bool,
    chunk: int = 1024,
) -> Iterator[tuple[slice, torch.Tensor, Any]]:
    """The exact nearest-neighbour search both ``NeighbourIndex`` and the knn detector run:
    for each block of ``chunk`` query rows, ``(its rows, the block, topk of scores(block))``
    (``scores``: one matrix product against the references; the chunk bounds memory at
    chunk x references).

    >>> ref = torch.eye(3)
    >>> [top.indices.tolist() for _, _, top in chunked_topk(ref, lambda b: b @ ref.T, 1, largest=True, chunk=2)]
    [[[0], [1]], [[2]]]
    """
    for start in range(0, len(queries), chunk):
        block = queries[start : start + chunk]
        top = torch.topk(scores(block), k, dim=1, largest=largest, sorted=True)
        yield slice(start, start + len(block)), block, top


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norm, 1e-12)


class NeighbourIndex:
    """Training embeddings with their ids and labels, queried for nearest neighbours."""

    def __init__(self, emb: np.ndarray, labels: Sequence[str], ids: Sequence[str]) -> None:
        if not (len(emb) == len(labels) == len(ids)):
            raise ValueError(
                f"{len(emb)} embeddings, {len(labels)} labels and {len(ids)} ids must match"
            )
        self.ref = _unit(emb)
        self._ref = torch.from_numpy(self.ref)  # shares memory; torch's threads, like the model
        self.labels = list(labels)
        self.ids = list(ids)

    def __len__(self) -> int:
        return len(self.ids)

    def query(self, x: np.ndarray, k: int, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
        """(distances, reference rows), each (N, k), nearest first."""
        k = min(int(k), len(self))
        q = torch.from_numpy(_unit(x))
        dist = np.zeros((len(q), k), np.float32)
        rows = np.zeros((len(q), k), np.int64)
        if k <= 0:
            return dist, rows
        # the most similar = the nearest: topk of the similarities, one product a chunk
        for part, _, top in chunked_topk(
            q, lambda b: b @ self._ref.T, k, largest=True, chunk=chunk
        ):
            rows[part] = top.indices.numpy()
            dist[part] = (1.0 - top.values).clamp_(0.0, 2.0).numpy()
        return dist, rows

    def neighbours(self, x: np.ndarray, k: int) -> list[list[dict]]:
        """For each query row, ``[{"id", "label", "distance"}, ...]`` nearest first."""
        dist, rows = self.query(x, k)
        ids, labels = self.ids, self.labels
        return [
            [
                {"id": ids[j], "label": labels[j], "distance": round(d, 6)}
                for d, j in zip(dr, rr, strict=True)
            ]
            for dr, rr in zip(dist.tolist(), rows.tolist(), strict=True)
        ]
