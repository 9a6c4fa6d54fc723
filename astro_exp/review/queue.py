"""The review queue: which pictures a person should label first.

A correction teaches most where the model is unsure (``uncertainty``), or where it and the
weak label disagree (``disagreement``: one of the two is wrong, and the person says which);
``anomaly`` shows the detector's strangest pictures, ``random`` a fixed shuffle (the baseline
that ``scripts/simulate_review.py`` measures the others against). Everything here works on
arrays, so the web app (over the catalog) and the simulation (over a labels file) share it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from astro_exp.errors import ConfigError
from astro_exp.review.settings import ORDERS, UNCERTAINTIES

_EPS = 1e-12
# the orders the web app's queue offers: the settings' (which the simulation plays too) and
# text_picture, which needs a prediction of the day's text beside the picture's own
QUEUE_ORDERS = (*ORDERS, "text_picture")


def uncertainty(probs: np.ndarray, measure: str = "margin", multilabel: bool = False) -> np.ndarray:
    """(N,) higher = less sure, from calibrated (N, C) probabilities.

    ``margin``: 1 - (top-1 minus top-2) for one label per picture; for multi-label, 1 minus
    the smallest distance of any class from 0.5 (times 2). ``entropy``: Shannon entropy of the
    distribution (multi-label: the sum of each class's Bernoulli entropy).
    """
    p = np.clip(np.asarray(probs, dtype=np.float64), _EPS, 1.0 - _EPS)
    if p.ndim != 2 or len(p) == 0:
        return np.zeros(len(p), dtype=np.float64)
    if measure not in UNCERTAINTIES:
        raise ConfigError(f"review.uncertainty={measure!r} must be margin or entropy")
    if multilabel:
        if measure == "margin":
            return 1.0 - 2.0 * np.abs(p - 0.5).min(axis=1)
        return -(p * np.log(p) + (1 - p) * np.log(1 - p)).sum(axis=1)
    if measure == "margin":
        top = -np.sort(-p, axis=1)
        second = top[:, 1] if p.shape[1] > 1 else np.zeros(len(p))
        return 1.0 - (top[:, 0] - second)
    return -(p * np.log(p)).sum(axis=1)


def disagreement(
    probs: np.ndarray, classes: Sequence[str], weak: Sequence[str | None]
) -> np.ndarray:
    """(N,) higher = a stronger disagreement of model and weak label.

    A picture whose weak label is not the model's top class scores 1 + the probability the
    model gives its own label (the surest disagreements first: there one of the two is
    clearly wrong); one that agrees scores its uncertainty margin, below every disagreement,
    so the queue goes on with the least certain agreements. No weak label counts as agreeing.
    """
    p = np.asarray(probs, dtype=np.float64)
    if len(p) == 0:
        return np.zeros(0)
    top = p.argmax(axis=1)
    predicted = [classes[int(i)] for i in top]
    disagree = np.array(
        [w is not None and w != m for w, m in zip(weak, predicted, strict=True)], dtype=bool
    )
    u = uncertainty(p, "margin") * 0.999  # < 1: an agreement never outranks a disagreement
    return np.where(disagree, 1.0 + p.max(axis=1), u)


def shuffle_key(key: str, seed: int) -> str:
    """The random order's sort key: a hash, so the queue is the same on every page load and a
    new picture lands at a random place without reshuffling the others."""
    return hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()


def review_order(
    order: str,
    *,
    keys: Sequence[str],
    probs: np.ndarray | None = None,
    classes: Sequence[str] = (),
    weak: Sequence[str | None] | None = None,
    anomaly: Sequence[float | None] | None = None,
    text_picture: Sequence[float | None] | None = None,
    measure: str = "margin",
    multilabel: bool = False,
    seed: int = 0,
) -> np.ndarray:
    """Indices into ``keys`` (one per picture), the picture to label first first.

    Pictures without what an order needs (no prediction, no anomaly score) go last, in the
    random order; ties keep the random order too, so no picture is stuck behind its neighbours.
    """
    if order not in QUEUE_ORDERS:
        raise ConfigError(f"review.order={order!r} must be one of {', '.join(QUEUE_ORDERS)}")
    n = len(keys)
    tiebreak = np.argsort(np.array([shuffle_key(str(k), seed) for k in keys], dtype=object))
    rank_random = np.empty(n, dtype=np.int64)
    rank_random[tiebreak] = np.arange(n)
    if order == "random" or n == 0:
        return tiebreak.astype(np.int64)
    score = np.full(n, -np.inf)
    if order == "anomaly":
        if anomaly is not None:
            score = np.array([-np.inf if a is None else float(a) for a in anomaly])
    elif order == "text_picture":  # text and picture disagree most first; no text: last
        if text_picture is not None:
            score = np.array([-np.inf if a is None else float(a) for a in text_picture])
    else:
        if probs is None:
            raise ConfigError(f"review.order={order} needs the model's probabilities")
        p = np.asarray(probs, dtype=np.float64)
        have = np.isfinite(p).all(axis=1) if p.ndim == 2 and len(p) else np.zeros(n, bool)
        if order == "uncertainty":
            s = uncertainty(np.nan_to_num(p), measure, multilabel)
        else:
            if weak is None:
                raise ConfigError("review.order=disagreement needs the weak labels")
            s = disagreement(np.nan_to_num(p), classes, weak)
        score = np.where(have, s, -np.inf)
    return np.lexsort((rank_random, -score)).astype(np.int64)


__all__ = ["QUEUE_ORDERS", "disagreement", "review_order", "shuffle_key", "uncertainty"]
