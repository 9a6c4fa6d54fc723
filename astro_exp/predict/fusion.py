"""Text and picture together: one label from a day's picture and its words.

Why: an APOD day is a picture *and* a text. The picture model is right on ~0.84 of unseen APOD
pictures and the labeller's rules on ~0.88 of their texts, and their mistakes differ (the
text names a galaxy in a picture of a telescope; the picture of a faint cluster looks like a
galaxy), so the two together are right more often than either.

How (naive Bayes, with two learned weights):

- **Text evidence.** The labeller (``conf/labels/*.yaml``) scores every class in a text.
  :class:`TextModel`, a multinomial logistic regression on ``log(1 + score)`` of each class,
  turns those scores into ``P(class | text)``: a text that says "nebula" weakly and "star"
  strongly counts as such. Divided by the class frequencies the model was fitted on, it is the
  likelihood of the text given each class, up to a constant.
- **Fusion.** ``logit(c) = a * log P_picture(c) + b * (log P(c | text) - log prior(c)) + bias(c)``,
  softmaxed. With ``a = b = 1`` and no bias this is Bayes' rule with the text and the picture
  independent given the class; ``a``, ``b`` and ``bias`` are fitted (NLL) where labels exist,
  which also calibrates the fused probabilities (the two are not quite independent: the
  picture model learnt from labels the rules wrote).
- **No text, or a text that names nothing** (no class scores): the picture alone, and the
  prediction says so (``evidence="picture"``).

Where the two models come from (``Fusion.source``, stored in bundles and run summaries):

- ``default``: the ``evidence`` block of the label config, fitted once on a person's labels
  and shipped with the rules (for ``apod4``: the shared thumbnails' careful labels; the YAML
  says so and what it measured);
- ``corrections``: refitted from a person's corrections (:func:`fit_text_model` on their
  texts) when there are enough of them (the review loop);
- ``em``: no careful labels at all: the text model is fitted by expectation-maximisation on
  unlabelled days, the picture model's probabilities anchoring the classes
  (:func:`fit_em`).

Example::

    >>> import numpy as np
    >>> tm = TextModel(["galaxy", "star"], np.array([[2.0, 0.0], [0.0, 2.0]]), np.zeros(2),
    ...                np.array([0.5, 0.5]))
    >>> fusion = Fusion(labeller=None, text=tm)
    >>> p_picture = np.array([[0.6, 0.4]])
    >>> fused = fusion.combine(p_picture, tm.features([{"star": 5.0}]), np.array([True]))
    >>> bool(fused[0, 1] > 0.5)  # the text says star strongly: it outweighs a 0.6 galaxy picture
    True
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import minimize

from astro_exp.config import to_plain
from astro_exp.data.labels import Labeller, build_labeller
from astro_exp.errors import ConfigError

log = logging.getLogger(__name__)

SOURCES = ("default", "corrections", "em", "none")
_EPS = 1e-9


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def _log(p: np.ndarray) -> np.ndarray:
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
        return _softmax(features @ self.coef.T + self.intercept)

    def log_likelihood(self, features: np.ndarray) -> np.ndarray:
        """(N, C) ``log P(text | class)`` up to a per-text constant: log posterior - log prior."""
        return _log(self.proba(features)) - _log(self.prior)[None, :]

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


@dataclass
class Fusion:
    """The labeller, its text model and the fusion weights: picture probabilities + texts ->
    fused probabilities.

    Args:
        labeller: turns (title, explanation) into per-class scores (None: scores are given).
        text: the :class:`TextModel` over the picture model's classes.
        picture_weight, text_weight: ``a`` and ``b`` of the module docstring.
        bias: (C,) class biases (None: zeros).
        source: ``default``, ``corrections`` or ``em`` (what the text model learnt from).
        fitted_on: a sentence on the data the weights were fitted on.
    """

    labeller: Labeller | None
    text: TextModel
    picture_weight: float = 1.0
    text_weight: float = 1.0
    bias: np.ndarray | None = None
    source: str = "default"
    fitted_on: str = ""
    label_config: dict[str, Any] = field(default_factory=dict)

    @property
    def classes(self) -> list[str]:
        return self.text.classes

    # -- evidence ---------------------------------------------------------------------------
    def scores(self, texts: Sequence[tuple[str | None, str | None] | str | None]) -> list[dict]:
        """The labeller's per-class scores of each text (``(title, explanation)`` or one
        string read as the title followed by the explanation); ``{}`` for no text."""
        if self.labeller is None:
            raise ConfigError("this fusion has no labeller; pass scores, not texts")
        out = []
        for t in texts:
            if t is None:
                out.append({})
                continue
            title, explanation = split_text(t) if isinstance(t, str) else (t[0], t[1])
            if not (title or "").strip() and not (explanation or "").strip():
                out.append({})
                continue
            out.append(dict(self.labeller.label(title, explanation).scores))
        return out

    def has_evidence(self, scores: Sequence[Mapping[str, float] | None]) -> np.ndarray:
        """(N,) bool: the text scores at least one of the picture model's classes."""
        return np.array([bool(s) and any(s.get(c, 0.0) > 0 for c in self.classes) for s in scores])

    # -- fusion -----------------------------------------------------------------------------
    def logits(self, picture_probs: np.ndarray, features: np.ndarray) -> np.ndarray:
        bias = np.zeros(len(self.classes)) if self.bias is None else self.bias
        return (
            self.picture_weight * _log(picture_probs)
            + self.text_weight * self.text.log_likelihood(features)
            + bias
        )

    def combine(
        self, picture_probs: np.ndarray, features: np.ndarray, has_text: np.ndarray
    ) -> np.ndarray:
        """(N, C) fused probabilities; rows without text evidence keep the picture's."""
        P = np.asarray(picture_probs, dtype=float)
        out = P.copy()
        if has_text.any():
            out[has_text] = _softmax(self.logits(P[has_text], features[has_text]))
        return out

    def fuse(
        self,
        picture_probs: np.ndarray,
        texts: Sequence[tuple[str | None, str | None] | str | None] | None = None,
        scores: Sequence[Mapping[str, float] | None] | None = None,
    ) -> tuple[np.ndarray, np.ndarray, list[dict], np.ndarray]:
        """Fuse a batch.

        Args:
            picture_probs: (N, C) the picture model's calibrated probabilities.
            texts: one ``(title, explanation)`` (or None) per picture; or give ``scores``.
            scores: the labeller's scores, when already computed.

        Returns:
            (fused (N, C), text probabilities (N, C), the scores, has_text (N,) bool).
        """
        if scores is None:
            scores = self.scores(texts or [None] * len(picture_probs))
        feats = self.text.features(scores)
        has = self.has_evidence(scores)
        return self.combine(picture_probs, feats, has), self.text.proba(feats), list(scores), has

    def describe(self) -> dict[str, Any]:
        """What a run summary, an evaluation or the web app says about this fusion."""
        return {
            "source": self.source,
            "fitted_on": self.fitted_on or self.text.fitted_on,
            "text_model_n": int(self.text.n),
            "picture_weight": round(float(self.picture_weight), 4),
            "text_weight": round(float(self.text_weight), 4),
            "labels": self.label_config.get("name"),
        }

    # -- persistence ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """What a bundle or a run summary keeps: enough to rebuild it without the configs."""
        return {
            "source": self.source,
            "fitted_on": self.fitted_on,
            "picture_weight": float(self.picture_weight),
            "text_weight": float(self.text_weight),
            "bias": None if self.bias is None else np.round(self.bias, 6).tolist(),
            "text_model": self.text.to_dict(),
            "labels": self.label_config,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], classes: Sequence[str] | None = None) -> Fusion:
        text = TextModel.from_dict(d["text_model"])
        if classes is not None and list(classes) != text.classes:
            missing = [c for c in classes if c not in text.classes]
            if missing:
                raise ConfigError(
                    f"the text model has no class {missing[0]!r} of the picture model; "
                    "set fusion.source=none or refit it (fusion.source=corrections or em)"
                )
            text = text.reordered(classes)
        label_cfg = dict(d.get("labels") or {})
        bias = d.get("bias")
        return cls(
            labeller=build_labeller(label_cfg) if label_cfg else None,
            text=text,
            picture_weight=float(d.get("picture_weight", 1.0)),
            text_weight=float(d.get("text_weight", 1.0)),
            bias=None if bias is None else np.asarray(bias, dtype=float),
            source=str(d.get("source", text.source)),
            fitted_on=str(d.get("fitted_on", "")),
            label_config=label_cfg,
        )


def split_text(text: str) -> tuple[str, str]:
    """One string as (title, explanation): its first line, or its first sentence (up to ``. ``
    or ``: ``), is the title; the rest the explanation. The labeller weighs a title three
    times, so a whole paragraph read as a title would count every passing word three times.

    >>> split_text("M16: The Eagle Nebula. Pillars of gas and dust.")
    ('M16', 'The Eagle Nebula. Pillars of gas and dust.')
    >>> split_text("Saturn at night")
    ('Saturn at night', '')
    """
    text = text.strip()
    if "\n" in text:
        first, rest = text.split("\n", 1)
        return first.strip(), rest.strip()
    m = re.search(r"[.:!?]\s+", text)
    if m is None:
        return text, ""
    return text[: m.start()].strip(), text[m.end() :].strip()


def default_fusion(label_cfg: Mapping[str, Any], classes: Sequence[str]) -> Fusion | None:
    """The label config's shipped ``evidence`` block as a :class:`Fusion` over ``classes``;
    None when the config has none or lacks one of the classes (the picture alone then)."""
    plain = dict(to_plain(label_cfg) or {})
    block = plain.get("evidence")
    if not block:
        return None
    labels = {k: v for k, v in plain.items() if k != "evidence"}
    model_keys = ("classes", "coef", "intercept", "prior", "n", "fitted_on")
    d = {
        "text_model": {**{k: block.get(k) for k in model_keys}, "source": "default"},
        **{k: v for k, v in block.items() if k not in model_keys},
        "fitted_on": block.get("fitted_on", ""),
        "labels": labels,
        "source": "default",
    }
    try:
        return Fusion.from_dict(d, classes)
    except ConfigError as e:
        log.info("no text fusion: %s", e)
        return None


def fusion_of_bundle(bundle: Mapping[str, Any], label_config: Any = None) -> Fusion | None:
    """The fusion a checkpoint bundle predicts with.

    In order: the bundle's own ``fusion`` (fitted by its run; ``source: none`` switches it
    off), else the ``evidence`` shipped with the label config it was trained with (its
    ``config.labels``), else with ``label_config`` (default: ``apod4``). None for multilabel
    bundles (sigmoid outputs are no distribution over classes) and when no text model knows
    the bundle's classes: the picture alone then.
    """
    if str(bundle.get("task", "multiclass")) != "multiclass":
        return None
    classes = [str(c) for c in bundle["classes"]]
    own = bundle.get("fusion")
    if own:
        if own.get("source") == "none":
            return None
        try:
            return Fusion.from_dict(own, classes)
        except ConfigError as e:
            log.warning("the bundle's text fusion is unusable (%s); the picture alone", e)
            return None
    cfg = ((bundle.get("config") or {}).get("labels")) or label_config
    try:
        if cfg is None:
            from astro_exp.data.labels import load_label_config

            cfg = load_label_config("apod4")
        return default_fusion(cfg, classes)
    except ConfigError as e:
        log.info("no text fusion for this bundle: %s", e)
        return None


def text_picture_disagreement(picture_probs: np.ndarray, text_probs: np.ndarray) -> np.ndarray:
    """(N,) how much the picture and the text disagree: ``1 - sum_c min(p_picture, p_text)``
    (0: the same distribution, 1: no class in common). The review queue's ``text_picture``
    order shows the largest first: a person's label there teaches the fusion most."""
    return 1.0 - np.minimum(np.asarray(picture_probs), np.asarray(text_probs)).sum(1)


def set_fusion(classifier: Any, setting: str) -> None:
    """Apply a command's ``fusion=`` setting to a :class:`~astro_exp.predict.classifier.Classifier`:
    ``auto`` keeps what the bundle brings, ``none`` predicts from the picture alone."""
    if setting == "none":
        classifier.fusion = None
    elif setting != "auto":
        raise ConfigError(f"fusion={setting!r} must be auto or none")


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
    L_p, L_t = _log(np.asarray(picture_probs, dtype=float)), np.asarray(text_loglik, dtype=float)
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
    (Bayes' rule, :class:`Fusion` with ``a = b = 1``), and the text model is refitted to the
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
        new = clamp(_softmax(Fusion(labeller=None, text=model).logits(P, features)))
        model = fit_text_model(features, new, classes, l2=l2, source=source, fitted_on=fitted_on)
        settled = np.abs(new - post).max() < 1e-4
        post = new
        if settled:
            break
    return model, post


__all__ = [
    "SOURCES",
    "Fusion",
    "TextModel",
    "default_fusion",
    "text_picture_disagreement",
    "fusion_of_bundle",
    "set_fusion",
    "split_text",
    "fit_em",
    "fit_text_model",
    "fit_weights",
]
