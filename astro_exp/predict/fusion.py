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

Here: :class:`Fusion`, the combiner, and where it comes from (a bundle, a label config).
The text model and its fit are in :mod:`astro_exp.predict.text_model`, the fusion's formula,
its weights' fit and EM in :mod:`astro_exp.predict.fusion_fit` (both importable from here).

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

from astro_exp.config import to_plain
from astro_exp.data.labels import Labeller, build_labeller
from astro_exp.errors import ConfigError
from astro_exp.predict.fusion_fit import fit_em, fit_weights, fused_logits
from astro_exp.predict.text_model import TextModel, fit_text_model, softmax_rows

log = logging.getLogger(__name__)

SOURCES = ("default", "corrections", "em", "none")


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
        """(N, C) fused logits (:func:`~astro_exp.predict.fusion_fit.fused_logits`)."""
        return fused_logits(
            picture_probs,
            self.text.log_likelihood(features),
            self.picture_weight,
            self.text_weight,
            self.bias,
        )

    def combine(
        self, picture_probs: np.ndarray, features: np.ndarray, has_text: np.ndarray
    ) -> np.ndarray:
        """(N, C) fused probabilities; rows without text evidence keep the picture's."""
        P = np.asarray(picture_probs, dtype=float)
        out = P.copy()
        if has_text.any():
            out[has_text] = softmax_rows(self.logits(P[has_text], features[has_text]))
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
