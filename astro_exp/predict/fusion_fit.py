"""Fitting the fusion (:mod:`astro_exp.predict.fusion`): its formula, :func:`fused_logits`;
its weights on labelled pictures, :func:`fit_weights`; and, with few or no careful labels,
the text model by expectation-maximisation, :func:`fit_em`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import minimize

from astro_exp.predict.text_model import TextModel, clipped_log, fit_text_model, softmax_rows


def fused_logits(
    picture_probs: np.ndarray,
    text_loglik: np.ndarray,
    picture_weight: float = 1.0,
    text_weight: float = 1.0,
    bias: np.ndarray | None = None,
) -> np.ndarray:
    """``a * log P_picture(c) + b * log P(text | c) + bias(c)``: with ``a = b = 1`` and no
    bias, Bayes' rule with the text and the picture independent given the class."""
    bias = np.zeros(picture_probs.shape[-1]) if bias is None else bias
    return picture_weight * clipped_log(picture_probs) + text_weight * text_loglik + bias


def fit_weights(
    picture_probs: np.ndarray,
    text_loglik: np.ndarray,
    y: np.ndarray,
    *,
    bias_l2: float = 10.0,
) -> tuple[float, float, np.ndarray]:
    """Fit ``a``, ``b`` and the class biases of the fusion by NLL on labelled pictures that
    have text evidence (held-out picture probabilities: a picture the model trained on is
    over-confident). The biases are penalised towards 0 so a few hundred labels do not
    re-weight the classes much.

    Returns:
        (a, b, bias).
    """
    L_p, L_t = (
        clipped_log(np.asarray(picture_probs, dtype=float)),
        np.asarray(text_loglik, dtype=float),
    )
    y = np.asarray(y, dtype=int)
    n, c = L_p.shape
    Y = np.eye(c)[y]

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        a, b, bias = theta[0], theta[1], theta[2:]
        z = a * L_p + b * L_t + bias
        z = z - z.max(1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(1, keepdims=True))
        G = (np.exp(logp) - Y) / n
        val = -(Y * logp).sum() / n + 0.5 * bias_l2 * float((bias**2).sum()) / n
        grad = np.concatenate([[(G * L_p).sum()], [(G * L_t).sum()], G.sum(0) + bias_l2 * bias / n])
        return val, grad

    theta0 = np.concatenate([[1.0, 1.0], np.zeros(c)])
    bounds = [(0.05, 5.0), (0.0, 5.0)] + [(None, None)] * c
    res = minimize(loss, theta0, jac=True, method="L-BFGS-B", bounds=bounds)
    return float(res.x[0]), float(res.x[1]), res.x[2:]


def fit_em(
    picture_probs: np.ndarray,
    features: np.ndarray,
    classes: Sequence[str],
    *,
    labels: np.ndarray | None = None,
    iters: int = 15,
    l2: float = 1.0,
    fitted_on: str = "",
) -> tuple[TextModel, np.ndarray]:
    """A text model from unlabelled days (and a person's labels, where there are some), by
    expectation-maximisation.

    The class of each day is hidden; the picture model (calibrated, and scored on pictures it
    did not train on) gives ``P(class | picture)``. Start from the picture's beliefs, fit
    ``P(class | text)`` to them, then repeat: each day's posterior is the fusion of both
    (Bayes' rule, :func:`fused_logits` with ``a = b = 1``), and the text model is refitted to the
    posteriors. The picture anchors what each class means; the text model learns how the
    rules' scores relate to it, so a rule that fires on the wrong pictures loses weight. A day
    a person labelled keeps that label as its posterior (semi-supervised EM): a few
    corrections steer the model and the unlabelled days still count.

    Args:
        picture_probs: (N, C) the picture model's probabilities on days with text evidence.
        features: (N, C) :meth:`TextModel.features` of their texts.
        classes: the class names.
        labels: (N,) a person's class index per day, -1 where none (None: no labels at all).
        iters: EM rounds (it stops earlier once the posteriors settle).
        l2: the text model's penalty.
        fitted_on: recorded in the model.

    Returns:
        (the text model, the last posteriors (N, C)).
    """
    P = np.asarray(picture_probs, dtype=float)
    c = len(classes)
    known = np.zeros(len(P), dtype=bool) if labels is None else np.asarray(labels) >= 0
    source = "corrections" if known.any() else "em"

    def clamp(post: np.ndarray) -> np.ndarray:
        if known.any():
            post = post.copy()
            post[known] = np.eye(c)[np.asarray(labels)[known].astype(int)]
        return post

    post = clamp(P)
    model = fit_text_model(features, post, classes, l2=l2, source=source, fitted_on=fitted_on)
    for _ in range(iters):
        new = clamp(softmax_rows(fused_logits(P, model.log_likelihood(features))))
        model = fit_text_model(features, new, classes, l2=l2, source=source, fitted_on=fitted_on)
        settled = np.abs(new - post).max() < 1e-4
        post = new
        if settled:
            break
    return model, post
