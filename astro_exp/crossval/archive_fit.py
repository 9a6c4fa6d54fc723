"""The archive study's probe: softmax regression on standardised frozen features.

Why its own code rather than scikit-learn's: soft targets (rows of class probabilities) and
per-picture weights are then one loss, so every label lever of the study
(:mod:`astro_exp.crossval.archive_probe`) is the same fit with other targets or weights.
The temperature is fitted as the engine fits it (:func:`~astro_exp.engine.calibration.fit_temperature`),
on weak labels under ``label_noise``: the study never calibrates on careful labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import minimize

from astro_exp.data.splits import fold_of
from astro_exp.engine.calibration import fit_temperature

CROSSFIT_FOLDS = 5


@dataclass
class Probe:
    """Standardiser + softmax regression weights."""

    mean: np.ndarray
    std: np.ndarray
    W: np.ndarray
    b: np.ndarray
    temperature: float = 1.0

    def logits(self, X: np.ndarray) -> np.ndarray:
        return ((X - self.mean) / self.std) @ self.W.T + self.b

    def proba(self, X: np.ndarray, calibrated: bool = True) -> np.ndarray:
        z = self.logits(X) / (self.temperature if calibrated else 1.0)
        z = z - z.max(1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(1, keepdims=True)


def fit_probe(
    X: np.ndarray, T: np.ndarray, w: np.ndarray | None = None, l2: float = 1e-3, iters: int = 300
) -> Probe:
    """Softmax regression on standardised ``X`` to ``T`` ((N,) class indices or (N, C) rows
    summing to 1), weighted by ``w``: mean weighted cross-entropy + ``l2/2 * |W|^2``."""
    mean, std = X.mean(0), X.std(0) + 1e-6
    Z = (X - mean) / std
    n, d = Z.shape
    T = np.asarray(T)
    c = T.shape[1] if T.ndim == 2 else int(T.max()) + 1
    if T.ndim == 1:
        T = np.eye(c)[T]
    w = np.ones(n) if w is None else np.asarray(w, float)
    w = w / w.sum()

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        W, b = theta[: c * d].reshape(c, d), theta[c * d :]
        z = Z @ W.T + b
        z = z - z.max(1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(1, keepdims=True))
        G = w[:, None] * (np.exp(logp) * T.sum(1, keepdims=True) - T)
        val = -(w[:, None] * T * logp).sum() + 0.5 * l2 * float((W**2).sum())
        return val, np.concatenate([(G.T @ Z + l2 * W).ravel(), G.sum(0)])

    res = minimize(
        loss, np.zeros(c * d + c), jac=True, method="L-BFGS-B", options={"maxiter": iters}
    )
    return Probe(mean, std, res.x[: c * d].reshape(c, d), res.x[c * d :])


def calibrate(probe: Probe, X_val: np.ndarray, y_val: np.ndarray, label_noise: float) -> None:
    """Temperature on the weak-labelled val split, under ``label_noise`` (the engine's fit)."""
    probe.temperature = float(
        fit_temperature(
            torch.from_numpy(probe.logits(X_val)).float(),
            torch.from_numpy(y_val),
            "multiclass",
            label_noise=label_noise,
        )
    )


def tempered(logits: np.ndarray, weak: np.ndarray, label_noise: float) -> tuple[np.ndarray, float]:
    """(probabilities, temperature) of held-out ``logits``, the temperature fitted on them
    against the weak labels under ``label_noise``."""
    t = fit_temperature(
        torch.from_numpy(logits).float(),
        torch.from_numpy(weak),
        "multiclass",
        label_noise=label_noise,
    )
    z = logits / t
    z = z - z.max(1, keepdims=True)
    out = np.exp(z)
    return out / out.sum(1, keepdims=True), t


def crossfit(
    X: np.ndarray,
    T: np.ndarray,
    ids: Sequence[str],
    w: np.ndarray | None,
    l2: float,
    label_noise: float,
    weak: np.ndarray,
    folds: int = CROSSFIT_FOLDS,
) -> np.ndarray:
    """Held-out probe probabilities of every row: fold k (a hash of the file name) scored by a
    probe fitted on the others, tempered on the held-out logits against the weak labels."""
    logits = np.zeros((len(X), T.shape[1] if T.ndim == 2 else int(T.max()) + 1))
    fold = np.array([fold_of(i, folds) for i in ids])
    for k in range(folds):
        tr, te = fold != k, fold == k
        p = fit_probe(X[tr], T[tr], None if w is None else w[tr], l2)
        logits[te] = p.logits(X[te])
    return tempered(logits, weak, label_noise)[0]


def one_hot(y: np.ndarray, c: int) -> np.ndarray:
    return np.eye(c)[y]


def class_weights(y: np.ndarray, c: int, power: float) -> np.ndarray:
    """(n / n_c) ** power per picture (the recipe's ``class_weight_power``), mean 1."""
    counts = np.bincount(y, minlength=c).astype(float)
    per = (counts.sum() / np.maximum(counts, 1.0)) ** power
    w = per[y]
    return w / w.mean()


__all__ = [
    "CROSSFIT_FOLDS",
    "Probe",
    "calibrate",
    "class_weights",
    "crossfit",
    "fit_probe",
    "one_hot",
    "tempered",
]
