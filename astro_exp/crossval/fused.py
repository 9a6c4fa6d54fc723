"""Cross-validated figures of the text and picture together (``crossval`` with ``metadata``).

Every held-out picture already has the picture model's probabilities from the fold model that
did not train on it. For held-out fold ``k`` the fusion is fitted only on the *other* folds:

- ``default``: the label config's shipped text model and weights as they are (fitted once on
  careful labels that include this fold's: the one figure here that is not held out, so it is
  reported beside the others, never instead of them);
- ``corrections``: the careful labels of the other folds stand for a person's corrections: the
  text model is fitted to their texts and the fusion weights ``a``, ``b`` and class biases to
  their held-out picture probabilities (each from its own fold model);
- ``em``: no careful labels at all: the text model by EM over the other folds' texts and
  picture probabilities, ``a = b = 1``.

Beside them: the picture alone, the text model alone (``corrections``' text model) and the
rules' first label alone. Multi-label: AP of each class against the labels file's ``all``
column, from the same probabilities (fused vs picture-only).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torchmetrics.classification as tmc

from astro_exp.predict.fusion import Fusion, fit_em, fit_text_model, fit_weights
from astro_exp.predict.scorecard import ece, score_probabilities

MODES = ("picture", "text", "rules", "default", "corrections", "em")


def _map(probs: np.ndarray, every: Sequence[Sequence[str]], classes: list[str]) -> float | None:
    """Mean AP over the classes present in ``every`` (None without multi-label rows)."""
    if not any(len(a) > 1 for a in every):
        return None
    t = torch.tensor([[int(c in a) for c in classes] for a in every])
    present = t.sum(0) > 0
    ap = tmc.MultilabelAveragePrecision(len(classes), average="none")(
        torch.from_numpy(probs).float(), t
    )
    return float(ap[present].mean())


def fused_figures(
    records: Sequence[Mapping[str, Any]],
    texts: Mapping[str, tuple[str, str]],
    default: Fusion,
    classes: Sequence[str],
    keep_probs: bool = False,
) -> dict[str, Any]:
    """Pooled and per-fold figures of each way of labelling the held-out pictures.

    Args:
        records: one per held-out picture: ``fold``, ``file``, ``label`` (careful), ``all``
            (every careful label), ``probs`` (the picture model's, in ``classes`` order).
        texts: ``{file: (title, explanation)}``; a picture without one keeps its picture answer.
        default: the shipped fusion (its labeller scores the texts).
        classes: the picture model's classes.
        keep_probs: also return each mode's (N, C) probabilities under ``probs``.

    Returns:
        ``{mode: {"pooled", "per_fold", "ece_pooled", "map"}}`` for :data:`MODES`, plus
        ``with_text`` (the share of pictures whose text named a class) and ``weights`` (each
        fold's fitted a, b).
    """
    classes = list(classes)
    index = {c: i for i, c in enumerate(classes)}
    P = np.asarray([r["probs"] for r in records], dtype=float)
    y = np.asarray([index.get(r["label"], -1) for r in records])
    folds = np.asarray([int(r["fold"]) for r in records])
    scores = default.scores([texts.get(r["file"]) for r in records])
    X = default.text.features(scores)
    has = default.has_evidence(scores)
    out: dict[str, np.ndarray] = {m: P.copy() for m in MODES}
    out["default"] = default.combine(P, X, has)
    rules = np.zeros_like(P)
    for i in range(len(scores)):
        primary = default.labeller.label(*texts[records[i]["file"]]).primary if has[i] else None
        if primary in index:
            rules[i, index[primary]] = 1.0
        else:  # no text, or the rules' answer is no class of the model: the picture decides
            rules[i] = P[i]
    out["rules"] = rules
    weights = []
    for k in np.unique(folds):
        test, train = folds == k, (folds != k) & (y >= 0)
        fit = train & has
        # a person's corrections: the other folds' careful labels
        tm = fit_text_model(X[fit], y[fit], classes, source="corrections")
        a, b, bias = fit_weights(P[fit], tm.log_likelihood(X[fit]), y[fit])
        fusion = Fusion(None, tm, a, b, bias, source="corrections")
        out["corrections"][test] = fusion.combine(P[test], X[test], has[test])
        out["text"][test & has] = tm.proba(X[test & has])
        weights.append({"fold": int(k), "picture_weight": a, "text_weight": b})
        # no careful labels: EM over the other folds' pictures and texts
        em_model, _ = fit_em(P[(folds != k) & has], X[(folds != k) & has], classes)
        out["em"][test] = Fusion(None, em_model).combine(P[test], X[test], has[test])
    every = [list(r.get("all") or [r["label"]]) for r in records]
    figures: dict[str, Any] = {}
    for mode, probs in out.items():
        per_fold = []
        for k in np.unique(folds):
            m = folds == k
            f = score_probabilities(probs[m], y[m], classes)
            per_fold.append({"fold": int(k), **{key: f[key] for key in ("acc", "f1_macro", "ece")}})
        figures[mode] = {
            "pooled": score_probabilities(probs, y, classes),
            "per_fold": per_fold,
            "ece_pooled": ece(probs, y),
            "ece_fold_mean": float(np.mean([f["ece"] for f in per_fold])),
            "map": _map(probs, every, classes),
        }
    figures["with_text"] = float(has.mean())
    figures["weights"] = weights
    figures["n"] = len(records)
    if keep_probs:
        figures["probs"] = out
    return figures


__all__ = ["MODES", "fused_figures"]
