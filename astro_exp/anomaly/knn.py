"""Exact k-nearest-neighbour anomaly scores as one matrix product: ``conf/detector/knn.yaml``.

Why not PyOD's ``KNN``: it fits a scikit-learn ``NearestNeighbors`` and, in ``fit``, scores
every training embedding against all the others (scores nobody reads: the threshold is set
on validation scores), and its queries go through scikit-learn's chunked search on a
second thread pool beside torch's. Here ``fit`` only keeps the (standardised) embeddings and
a query is ``|q|^2 + |r|^2 - 2 q.r`` as one torch matrix product (on torch's own threads)
and ``topk``. Exact brute force: at 10k-100k references and a few hundred dimensions it is
fast, and the scores equal PyOD's ``KNN`` with the same parameters to float32 rounding
(about 1e-6 of a distance; ``tests/test_anomaly.py``).
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator

from astro_exp.anomaly.neighbours import chunked_topk
from astro_exp.errors import ConfigError

METHODS = ("largest", "mean", "median")


class ExactKNN(BaseEstimator):
    """Distance to the k nearest training embeddings (PyOD ``KNN``'s parameter names).

    ``method``: the score from the k distances: ``largest`` (the k-th), ``mean`` or
    ``median``. ``metric``: Euclidean only (``minkowski`` with ``p=2``, PyOD's default).
    ``contamination`` is accepted for configs written for PyOD and not used: the flag
    threshold comes from validation scores (:meth:`AnomalyDetector.calibrate`).
    ``chunk``: query rows per matrix product (bounds memory at chunk x references).
    """

    def __init__(
        self,
        n_neighbors: int = 5,
        method: str = "largest",
        metric: str = "minkowski",
        p: int = 2,
        contamination: float = 0.1,
        chunk: int = 1024,
    ) -> None:
        self.n_neighbors = n_neighbors
        self.method = method
        self.metric = metric
        self.p = p
        self.contamination = contamination
        self.chunk = chunk

    def fit(self, X: np.ndarray, y: object = None) -> ExactKNN:
        """Keep the training embeddings (float32) and their squared norms."""
        if self.method not in METHODS:
            raise ConfigError(f"detector.method={self.method!r} must be one of {METHODS}")
        if not (self.metric == "euclidean" or (self.metric == "minkowski" and self.p == 2)):
            raise ConfigError(
                f"detector=knn measures Euclidean distance only (metric={self.metric!r}, p={self.p});"
                " use metric: minkowski with p: 2"
            )
        x = np.ascontiguousarray(X, dtype=np.float32)
        if x.ndim != 2 or len(x) < 1:
            raise ConfigError(f"ExactKNN needs (N, D) embeddings, got shape {x.shape}")
        self.fit_X_ = x
        self.ref_sq_ = (x.astype(np.float64) ** 2).sum(1).astype(np.float32)
        self.n_features_in_ = x.shape[1]
        return self

    def kneighbors(self, X: np.ndarray, k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(distances float64, training rows), each (N, k), nearest first."""
        ref = torch.from_numpy(self.fit_X_)
        ref_sq = torch.from_numpy(self.ref_sq_)
        k = min(int(self.n_neighbors if k is None else k), len(ref))
        q_all = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
        if q_all.ndim != 2 or q_all.shape[1] != ref.shape[1]:
            raise ValueError(
                f"embeddings of width {ref.shape[1]} expected, got {tuple(q_all.shape)}"
            )
        dist = np.zeros((len(q_all), k), np.float64)
        rows = np.zeros((len(q_all), k), np.int64)
        # |r|^2 - 2 q.r: the squared distance less the query's own |q|^2 (same order)
        blocks = chunked_topk(
            q_all,
            lambda q: torch.addmm(ref_sq[None, :], q, ref.T, alpha=-2.0),
            k,
            largest=False,
            chunk=int(self.chunk),
        )
        for part, q, top in blocks:
            q_sq = q.double().pow(2).sum(1, keepdim=True)
            d2 = (top.values.double() + q_sq).clamp_(min=0.0)
            dist[part] = d2.sqrt_().numpy()
            rows[part] = top.indices.numpy()
        return dist, rows

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Anomaly scores (higher = farther from the training embeddings) of (N, D) rows."""
        dist, _ = self.kneighbors(X)
        if self.method == "largest":
            return dist[:, -1]
        if self.method == "mean":
            return dist.mean(1)
        return np.median(dist, axis=1)
