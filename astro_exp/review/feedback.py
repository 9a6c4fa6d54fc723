"""Anomaly marks: a person's "interesting" / "not interesting" re-ranks the detector's list.

A detector ranks by how unlike the training pictures a picture is; a researcher wants the
unusual pictures *they* care about (Astronomaly, Lochner & Bassett 2021, fits a model to the
person's scores and re-weights the anomaly score by it). Here the model is a kernel vote
over the detector's own embedding space: each picture gets

    rank score = z(detector score) + strength * vote,
    vote = sum_j w_j (2 y_j - 1) / (sum_j w_j + prior),   w_j = exp(-(d_j / h)^2)

with d_j the cosine distance to marked picture j, y_j = 1 for interesting, and h the median
distance from a mark to its ``neighbours``-th nearest picture. A picture near boring marks
sinks, one near interesting marks rises, one far from every mark keeps its detector rank;
with no marks the ranking is the detector's. No fit can fail: one mark of one kind works.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from astro_exp.review.settings import FeedbackSettings


def robust_z(scores: np.ndarray) -> np.ndarray:
    """(s - median) / (1.4826 * MAD): detector scores of any scale on one footing."""
    s = np.asarray(scores, dtype=np.float64)
    if s.size == 0:
        return s
    med = float(np.median(s))
    mad = float(np.median(np.abs(s - med))) * 1.4826
    if not np.isfinite(mad) or mad <= 0:
        mad = float(np.std(s)) or 1.0
    return (s - med) / mad


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


@dataclass
class MarkVote:
    """The marks, ready to vote on any picture's embedding."""

    marked: np.ndarray  # (M, D) unit embeddings of the marked pictures
    sign: np.ndarray  # (M,) +1 interesting, -1 not
    bandwidth: float
    prior: float

    @classmethod
    def fit(
        cls,
        marked: np.ndarray,
        interesting: np.ndarray,
        pool: np.ndarray,
        settings: FeedbackSettings,
    ) -> MarkVote:
        """``marked`` (M, D) embeddings with their verdicts; ``pool`` (N, D) the pictures
        being ranked (the kernel's width is set from how dense they are around the marks)."""
        m, p = _unit(marked), _unit(pool)
        if len(m) == 0 or len(p) == 0:
            return cls(m, np.zeros(len(m)), 1.0, settings.prior)
        d = np.clip(1.0 - m @ p.T, 0.0, 2.0)  # (M, N) cosine distances
        k = min(settings.neighbours, d.shape[1] - 1)
        kth = np.partition(d, k, axis=1)[:, k] if k >= 0 else d.max(axis=1)
        h = float(np.median(kth))
        if not np.isfinite(h) or h <= 1e-6:
            h = float(np.median(d[d > 0])) if (d > 0).any() else 1.0
        sign = np.where(np.asarray(interesting, dtype=bool), 1.0, -1.0)
        return cls(m, sign, h, settings.prior)

    def vote(self, emb: np.ndarray) -> np.ndarray:
        """(N,) in [-1, 1]: + like the interesting marks, - like the boring ones, 0 far away."""
        if len(self.marked) == 0:
            return np.zeros(len(emb))
        d = np.clip(1.0 - _unit(emb) @ self.marked.T, 0.0, 2.0)  # (N, M)
        w = np.exp(-((d / self.bandwidth) ** 2))
        return (w * self.sign).sum(axis=1) / (w.sum(axis=1) + self.prior)


def rerank(
    scores: np.ndarray,
    emb: np.ndarray,
    marked: np.ndarray,
    interesting: np.ndarray,
    settings: FeedbackSettings,
) -> np.ndarray:
    """(N,) the ranking score of each picture (higher = show earlier) with the marks applied."""
    z = robust_z(scores)
    if len(marked) == 0 or settings.strength == 0:
        return z
    return z + settings.strength * MarkVote.fit(marked, interesting, emb, settings).vote(emb)


__all__ = ["MarkVote", "rerank", "robust_z"]
