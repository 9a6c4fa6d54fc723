"""The text side of the fusion (:mod:`astro_exp.predict.fusion`): :class:`TextModel`,
``P(class | text)`` from the labeller's per-class scores, and :func:`fit_text_model`, its
L2-penalised maximum-likelihood fit (on a person's labels, or on EM's soft posteriors).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize

from astro_exp.errors import ConfigError

_EPS = 1e-9


def softmax_rows(z: np.ndarray) -> np.ndarray:
    """The softmax of each row of ``z``."""
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def clipped_log(p: np.ndarray) -> np.ndarray:
    """``log p`` with p clipped to [1e-9, 1]: a probability of 0 costs a lot, not infinitely."""
    return np.log(np.clip(p, _EPS, 1.0))


@dataclass
class TextModel:
    """``P(class | text)`` from the labeller's per-class scores (a multinomial logistic
    regression on ``log(1 + score)``).

    Args:
        classes: the classes, in the order of every array here.
        coef: (C, C) weights: row = class of the answer, column = class of the score.
        intercept: (C,) biases.
        prior: (C,) class frequencies of the data it was fitted on (the likelihood divides by it).
        source: what it was fitted from (``default``, ``corrections``, ``em``).
        n: how many texts it was fitted on.
    """

    classes: list[str]
    coef: np.ndarray
    intercept: np.ndarray
    prior: np.ndarray
    source: str = "default"
    n: int = 0
    fitted_on: str = ""

    def features(self, scores: Sequence[Mapping[str, float] | None]) -> np.ndarray:
        """(N, C) ``log(1 + score)`` per class; a missing text is all zeros (it is masked out
        by the caller, see :meth:`Fusion.has_evidence`)."""
        out = np.zeros((len(scores), len(self.classes)))
        for i, s in enumerate(scores):
            if s:
                out[i] = [np.log1p(max(0.0, float(s.get(c, 0.0)))) for c in self.classes]
        return out

    def proba(self, features: np.ndarray) -> np.ndarray:
        """(N, C) ``P(class | text)``."""
        return softmax_rows(features @ self.coef.T + self.intercept)

    def log_likelihood(self, features: np.ndarray) -> np.ndarray:
        """(N, C) ``log P(text | class)`` up to a per-text constant: log posterior - log prior."""
        return clipped_log(self.proba(features)) - clipped_log(self.prior)[None, :]

    def to_dict(self) -> dict[str, Any]:
        return {
            "classes": list(self.classes),
            "coef": np.round(self.coef, 6).tolist(),
            "intercept": np.round(self.intercept, 6).tolist(),
            "prior": np.round(self.prior, 6).tolist(),
            "source": self.source,
            "n": int(self.n),
            "fitted_on": self.fitted_on,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TextModel:
        try:
            classes = [str(c) for c in d["classes"]]
            coef = np.asarray(d["coef"], dtype=float)
            intercept = np.asarray(d["intercept"], dtype=float)
            prior = np.asarray(d["prior"], dtype=float)
        except (KeyError, TypeError, ValueError) as e:
            raise ConfigError(
                f"text model lacks or mangles {e}; it needs classes, coef, intercept, prior"
            ) from None
        c = len(classes)
        if coef.shape != (c, c) or intercept.shape != (c,) or prior.shape != (c,):
            raise ConfigError(
                f"text model shapes coef {coef.shape}, intercept {intercept.shape}, prior "
                f"{prior.shape} do not fit its {c} classes"
            )
        return cls(
            classes,
            coef,
            intercept,
            prior / prior.sum(),
            str(d.get("source", "default")),
            int(d.get("n", 0)),
            str(d.get("fitted_on", "")),
        )

    def reordered(self, classes: Sequence[str]) -> TextModel:
        """The same model over ``classes`` (another order, or a subset: a four-class picture
        model without ``other``); the dropped classes' scores are ignored."""
        idx = [self.classes.index(c) for c in classes]
        prior = self.prior[idx]
        return TextModel(
            list(classes),
            self.coef[np.ix_(idx, idx)],
            self.intercept[idx],
            prior / prior.sum(),
            self.source,
            self.n,
            self.fitted_on,
        )


def fit_text_model(
    features: np.ndarray,
    targets: np.ndarray,
    classes: Sequence[str],
    *,
    l2: float = 1.0,
    source: str = "corrections",
    fitted_on: str = "",
    sample_weight: np.ndarray | None = None,
) -> TextModel:
    """Fit ``P(class | text)`` by L2-penalised maximum likelihood.

    Args:
        features: (N, C) from :meth:`TextModel.features`.
        targets: (N,) class indices, or (N, C) soft targets (rows summing to 1: EM's posteriors).
        classes: the class names.
        l2: penalty on the weights (not the biases); 1.0 keeps a few hundred texts from
            over-fitting one rare class.
        source, fitted_on: recorded in the model.
        sample_weight: (N,) weights, default 1.

    Returns:
        The fitted :class:`TextModel`; ``prior`` is the (weighted) mean target.
    """
    X = np.asarray(features, dtype=float)
    n, c = X.shape[0], len(classes)
    T = np.asarray(targets)
    if T.ndim == 1:
        T = np.eye(c)[T.astype(int)]
    T = T.astype(float)
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    if n == 0:
        raise ConfigError("no labelled texts to fit the text model on")
    prior = (T * w[:, None]).sum(0) + 0.5  # half a picture per class: no class has prior 0
    prior = prior / prior.sum()
    d = X.shape[1]

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        W, b = theta[: c * d].reshape(c, d), theta[c * d :]
        z = X @ W.T + b
        z = z - z.max(1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(1, keepdims=True))
        nll = -(w[:, None] * T * logp).sum() / w.sum()
        P = np.exp(logp)
        G = (w[:, None] * (P * T.sum(1, keepdims=True) - T)) / w.sum()
        gW = G.T @ X + l2 * W / max(1.0, w.sum())
        return nll + 0.5 * l2 * float((W**2).sum()) / max(1.0, w.sum()), np.concatenate(
            [gW.ravel(), G.sum(0)]
        )

    theta0 = np.concatenate([np.eye(c, d).ravel(), np.log(prior)])
    res = minimize(loss, theta0, jac=True, method="L-BFGS-B", options={"maxiter": 500})
    W, b = res.x[: c * d].reshape(c, d), res.x[c * d :]
    return TextModel(list(classes), W, b, prior, source, int(n), fitted_on)
