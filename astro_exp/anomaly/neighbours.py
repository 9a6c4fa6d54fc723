""" "Compared with what it has seen": the k nearest training pictures in embedding space.

Cosine distance (1 - cosine similarity) on the pre-logits embeddings: it ignores the
overall feature magnitude, which follows brightness and contrast more than content.
Exact brute force in chunks: a few thousand to tens of thousands of references take
milliseconds a query batch, and exact answers are easy to check.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


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
        self.labels = list(labels)
        self.ids = list(ids)

    def __len__(self) -> int:
        return len(self.ids)

    def query(self, x: np.ndarray, k: int, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
        """(distances, reference rows), each (N, k), nearest first."""
        k = min(int(k), len(self))
        q = _unit(x)
        dist = np.zeros((len(q), k), np.float32)
        rows = np.zeros((len(q), k), np.int64)
        if k <= 0:
            return dist, rows
        for s in range(0, len(q), chunk):
            d = 1.0 - q[s : s + chunk] @ self.ref.T  # (n, R)
            part = (
                np.argpartition(d, k - 1, axis=1)[:, :k]
                if k < d.shape[1]
                else np.tile(np.arange(d.shape[1]), (len(d), 1))
            )
            pd = np.take_along_axis(d, part, axis=1)
            order = np.argsort(pd, axis=1, kind="stable")
            rows[s : s + chunk] = np.take_along_axis(part, order, axis=1)
            dist[s : s + chunk] = np.clip(np.take_along_axis(pd, order, axis=1), 0.0, 2.0)
        return dist, rows

    def neighbours(self, x: np.ndarray, k: int) -> list[list[dict]]:
        """For each query row, ``[{"id", "label", "distance"}, ...]`` nearest first."""
        dist, rows = self.query(x, k)
        return [
            [
                {"id": self.ids[j], "label": self.labels[j], "distance": round(float(d), 6)}
                for d, j in zip(dr, rr, strict=True)
            ]
            for dr, rr in zip(dist, rows, strict=True)
        ]
