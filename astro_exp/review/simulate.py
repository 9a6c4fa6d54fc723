"""What a person's corrections and anomaly marks are worth, simulated with a labels file.

A careful person is played by a labels file (``gold.csv``). The pictures are split by
:func:`~astro_exp.data.splits.fold_of` (animation frames together): one fold is held out and
never shown; the rest is the pool the review queue draws from. The model is a linear head on
frozen ImageNet features, refitted after every round (the loop a user can run in seconds; a
full ``train.py experiment=apod`` run uses the corrections the same way, weak labels for the
rest, but takes minutes per round). Each round the queue (:func:`~astro_exp.review.queue.review_order`
over the head's cross-fitted probabilities, so a picture is judged by a head that did not
train on it) picks ``per_round`` uncorrected pool pictures; the person's label replaces
their weak label; the head is refitted and scored on the held-out fold against the person's
labels. The held-out labels are used only for scoring.

The anomaly marks: every picture gets a detector score cross-fitted over the folds (a knn
detector fitted on the other folds' embeddings); the person marks the top of the current
ranking (interesting when the labels file's class is one of ``interesting``) a few at a
time, the ranking is recomputed with :func:`~astro_exp.review.feedback.rerank`, and the
precision of the top ``top`` pictures not marked yet is recorded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from astro_exp.data.splits import fold_of
from astro_exp.errors import ConfigError
from astro_exp.predict.fusion import Fusion, fit_em, text_picture_disagreement
from astro_exp.review.feedback import rerank, robust_z
from astro_exp.review.queue import review_order
from astro_exp.review.settings import ORDERS, ReviewSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pool:
    """The pictures of a simulation: features, the weak labels and the person's labels."""

    ids: list[str]
    classes: list[str]
    features: np.ndarray  # (N, D) what the head is fitted on
    anomaly_features: np.ndarray  # (N, E) what the detector and the marks look at
    weak: np.ndarray  # (N,) class index of the weak label
    person: np.ndarray  # (N,) class index of the person's label
    # the labeller's per-class scores of each picture's text, as TextModel.features reads
    # them ((N, C) log(1 + score)), and whether the text named a class; None: no texts
    text_features: np.ndarray | None = None
    has_text: np.ndarray | None = None


def _fit_head(x: np.ndarray, y: np.ndarray, w: np.ndarray, c: float, n_classes: int):  # noqa: ANN202
    """Standardised features -> class-balanced logistic regression (what the frozen-feature
    probes measured best); classes missing from ``y`` get probability 0."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    head = make_pipeline(
        StandardScaler(), LogisticRegression(C=c, max_iter=3000, class_weight="balanced")
    )
    head.fit(x, y, logisticregression__sample_weight=w)
    present = head.classes_

    def predict(z: np.ndarray) -> np.ndarray:
        p = np.zeros((len(z), n_classes))
        p[:, present] = head.predict_proba(z)
        return p

    return predict


def _scores(person: np.ndarray, probs: np.ndarray, n_classes: int) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    pred = probs.argmax(axis=1)
    return {
        "acc": float(accuracy_score(person, pred)),
        "f1_macro": float(
            f1_score(person, pred, average="macro", labels=list(range(n_classes)), zero_division=0)
        ),
    }


def _crossfit(
    x: np.ndarray, y: np.ndarray, w: np.ndarray, c: float, n_classes: int, folds: int, seed: int
) -> np.ndarray:
    """Probabilities of every pool picture from a head that did not train on it."""
    rng = np.random.default_rng(seed)
    part = rng.permutation(len(x)) % folds
    out = np.zeros((len(x), n_classes))
    for k in range(folds):
        tr, te = part != k, part == k
        out[te] = _fit_head(x[tr], y[tr], w[tr], c, n_classes)(x[te])
    return out


def _reduce(features: np.ndarray, fit_rows: np.ndarray, dims: int) -> np.ndarray:
    """PCA to ``dims`` fitted on the pool (no labels): the head fits ~10x faster and the
    probes scored the same at 256 dims as at 1280."""
    from sklearn.decomposition import PCA

    dims = min(dims, len(fit_rows), features.shape[1])
    return PCA(n_components=dims, random_state=0).fit(features[fit_rows]).transform(features)


@dataclass(frozen=True)
class _Plan:
    """What every curve of one :func:`simulate_corrections` call shares."""

    settings: ReviewSettings
    rounds: int
    per_round: int
    c: float  # the head's inverse L2 strength
    correction_weight: float
    inner_folds: int


def _one_curve(
    pool: Pool,
    feats: np.ndarray,
    tr: np.ndarray,
    held: np.ndarray,
    anomaly: np.ndarray,
    order: str,
    seed: int,
    plan: _Plan,
) -> list[dict]:
    """One learning curve: the head refitted after each round's corrections, scored on the
    held-out pictures (and, with texts, fused with the text model of the corrections)."""
    rounds, per_round, c = plan.rounds, plan.per_round, plan.c
    x, xt = feats[tr], feats[held]
    n_classes = len(pool.classes)
    y = pool.weak[tr].copy()
    w = np.ones(len(tr))
    corrected = np.zeros(len(tr), dtype=bool)
    curve = []
    for r in range(rounds + 1):
        head = _fit_head(x, y, w, c, n_classes)
        held_probs = head(xt)
        point = {
            "corrections": int(corrected.sum()),
            "weak_fixed": int((y != pool.weak[tr]).sum()),
            **_scores(pool.person[held], held_probs, n_classes),
        }
        if r == rounds and pool.text_features is None:
            curve.append(point)
            break
        probs = _crossfit(x, y, w, c, n_classes, plan.inner_folds, seed)
        queue_probs, text_probs = probs, None
        if pool.text_features is not None and pool.has_text is not None:
            # the text model from the corrections so far (and EM over the rest of the pool),
            # fused with the picture head: what the app shows after these corrections
            fusion = _pool_fusion(pool, tr, probs, np.where(corrected, pool.person[tr], -1))
            X, has = pool.text_features, pool.has_text
            fused_held = fusion.combine(held_probs, X[held], has[held])
            point.update(
                {
                    f"fused_{k}": v
                    for k, v in _scores(pool.person[held], fused_held, n_classes).items()
                }
            )
            queue_probs = fusion.combine(probs, X[tr], has[tr])
            text_probs = np.where(has[tr][:, None], fusion.text.proba(X[tr]), probs)
        curve.append(point)
        if r == rounds:
            break
        left = np.flatnonzero(~corrected)
        if order == "text_picture" and text_probs is None:
            raise ConfigError("orders=text_picture needs the pictures' texts (fusion=true)")
        idx = review_order(
            order,
            keys=[pool.ids[tr[i]] for i in left],
            probs=queue_probs[left],
            classes=pool.classes,
            weak=[pool.classes[int(v)] for v in y[left]],
            anomaly=anomaly[left].tolist(),
            text_picture=None
            if text_probs is None
            else text_picture_disagreement(probs[left], text_probs[left]).tolist(),
            measure=plan.settings.uncertainty,
            seed=seed,
        )
        pick = left[idx[:per_round]]
        corrected[pick] = True
        y[pick] = pool.person[tr][pick]
        w[pick] = plan.correction_weight
    return curve


def _pool_fusion(pool: Pool, tr: np.ndarray, probs: np.ndarray, labels: np.ndarray) -> Fusion:
    """The fusion a review loop has after some corrections: the text model by EM over the
    pool's texts and cross-fitted picture probabilities, the corrected pictures clamped to the
    person's labels (none at all: plain EM, no careful labels)."""
    assert pool.text_features is not None and pool.has_text is not None
    has = pool.has_text[tr]
    tm, _ = fit_em(probs[has], pool.text_features[tr][has], pool.classes, labels=labels[has])
    return Fusion(None, tm, source=tm.source)


def simulate_corrections(
    pool: Pool,
    settings: ReviewSettings,
    *,
    orders: Sequence[str] = ORDERS,
    rounds: int = 4,
    per_round: int = 50,
    folds: int = 5,
    held_out: Sequence[int] = (0,),
    c: float = 0.01,
    correction_weight: float = 1.0,
    seeds: Sequence[int] = (0, 1, 2),
    dims: int = 256,
    inner_folds: int = 5,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Learning curves: held-out macro-F1 after 0, per_round, ... corrections, per order,
    averaged over the ``held_out`` folds (and, for ``random``, over ``seeds``)."""
    fold_ids = np.array([fold_of(i, folds) for i in pool.ids])
    plan = _Plan(settings, rounds, per_round, c, correction_weight, inner_folds)
    reduced, ceiling = _features_and_ceiling(pool, fold_ids, held_out, dims, c)
    curves: dict[str, list[dict]] = {}
    for order in orders:
        runs = _order_runs(pool, plan, order, fold_ids, held_out, reduced, seeds, progress)
        curves[order] = _mean_curve(runs)
    gains = {o: curves[o][-1]["f1_macro"] - curves[o][0]["f1_macro"] for o in curves}
    fused_gains = {
        o: curves[o][-1]["fused_f1_macro"] - curves[o][0]["fused_f1_macro"]
        for o in curves
        if "fused_f1_macro" in curves[o][0]
    }
    return {
        "held_out": {
            "folds": folds,
            "held_out_folds": list(held_out),
            "n": int(np.isin(fold_ids, list(held_out)).sum()),
        },
        "pool_per_fold": int(len(pool.ids) - (fold_ids == held_out[0]).sum()),
        "weak_wrong": int((pool.weak != pool.person).sum()),
        "rounds": rounds,
        "per_round": per_round,
        "head": {
            "model": "PCA -> standardise -> logistic regression (class-balanced)",
            "C": c,
            "dims": dims,
        },
        "correction_weight": correction_weight,
        "random_seeds": list(seeds),
        "curves": curves,
        "gain_f1_macro": gains,
        "gain_fused_f1_macro": fused_gains,
        "all_pool_labels_from_the_person": {
            key: float(np.mean([p[key] for p in ceiling])) for key in ("acc", "f1_macro")
        },
    }


def _features_and_ceiling(
    pool: Pool, fold_ids: np.ndarray, held_out: Sequence[int], dims: int, c: float
) -> tuple[dict[int, np.ndarray], list[dict[str, float]]]:
    """Per held-out fold: the features reduced by a PCA fitted on the rest, and what every
    pool label from the person would give (the curves' roof)."""
    n_classes = len(pool.classes)
    reduced = {}
    ceiling = []
    for k in held_out:
        held = fold_ids == k
        tr = np.flatnonzero(~held)
        reduced[k] = _reduce(pool.features, tr, dims)
        head = _fit_head(reduced[k][tr], pool.person[tr], np.ones(len(tr)), c, n_classes)
        ceiling.append(_scores(pool.person[held], head(reduced[k][held]), n_classes))
    return reduced, ceiling


def _order_runs(
    pool: Pool,
    plan: _Plan,
    order: str,
    fold_ids: np.ndarray,
    held_out: Sequence[int],
    reduced: dict[int, np.ndarray],
    seeds: Sequence[int],
    progress: Callable[[str], None] | None,
) -> list[list[dict]]:
    """The curves of one queue order, a run per held-out fold and seed."""
    runs = []
    for k in held_out:
        held = fold_ids == k
        tr = np.flatnonzero(~held)
        anomaly = _knn_scores(pool.anomaly_features[tr], plan.inner_folds, plan.settings.seed)
        for seed in seeds:  # every order: the seed moves the inner folds and the ties
            runs.append(_one_curve(pool, reduced[k], tr, held, anomaly, order, seed, plan))
            if progress:
                progress(
                    f"{order} fold {k} seed {seed}: "
                    + " ".join(f"{p['corrections']}:{p['f1_macro']:.3f}" for p in runs[-1])
                )
    return runs


def _mean_curve(runs: list[list[dict]]) -> list[dict]:
    """The mean of each point over the runs (folds x seeds), with the macro-F1's spread."""
    out = []
    for points in zip(*runs, strict=True):
        keys = points[0].keys()
        out.append({k: float(np.mean([p[k] for p in points])) for k in keys})
        out[-1]["corrections"] = int(points[0]["corrections"])
        out[-1]["runs"] = len(points)
        if len(runs) > 1:
            for key in ("f1_macro", "fused_f1_macro"):
                if key in points[0]:
                    out[-1][f"{key}_sd"] = float(np.std([p[key] for p in points]))
    return out


def _knn_scores(emb: np.ndarray, folds: int, seed: int, k: int = 20) -> np.ndarray:
    """Cross-fitted knn anomaly scores (mean cosine distance to the k nearest pictures of the
    other folds): every picture is scored by a detector that never saw it."""
    e = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    part = np.random.default_rng(seed).permutation(len(e)) % folds
    out = np.zeros(len(e))
    for f in range(folds):
        ref, q = e[part != f], e[part == f]
        d = 1.0 - q @ ref.T
        kk = min(k, d.shape[1])
        out[part == f] = np.sort(np.partition(d, kk - 1, axis=1)[:, :kk], axis=1).mean(axis=1)
    return out


def simulate_marks(
    pool: Pool,
    settings: ReviewSettings,
    *,
    interesting: Sequence[str],
    checkpoints: Sequence[int] = (0, 10, 30),
    step: int = 5,
    top: int = 20,
    folds: int = 5,
) -> dict:
    """Precision at the top ``top`` unmarked pictures for the ``interesting`` classes after
    each number of marks in ``checkpoints`` (the person marks the top of the ranking, ``step``
    at a time, and the ranking is recomputed after each step)."""
    unknown = sorted(set(interesting) - set(pool.classes))
    if unknown:
        from astro_exp.errors import ConfigError

        raise ConfigError(f"interesting={unknown} are not classes of the labels ({pool.classes})")
    want = np.isin(np.array(pool.classes)[pool.person], list(interesting))
    scores = _knn_scores(pool.anomaly_features, folds, settings.seed)
    marked: list[int] = []
    out = []
    target = max(checkpoints)
    while True:
        if marked:
            m = np.array(marked)
            rank = rerank(
                scores, pool.anomaly_features, pool.anomaly_features[m], want[m], settings.feedback
            )
        else:
            rank = robust_z(scores)
        order = np.argsort(-rank, kind="stable")
        done = set(marked)
        unmarked = [int(i) for i in order if i not in done]
        if len(marked) in checkpoints:
            head = unmarked[:top]
            # the same marked pictures gone, the detector's own order for the rest
            plain = [int(i) for i in np.argsort(-scores, kind="stable") if int(i) not in done][:top]
            out.append(
                {
                    "marks": len(marked),
                    "interesting_marked": int(want[marked].sum()) if marked else 0,
                    f"precision_at_{top}": float(want[head].mean()) if head else float("nan"),
                    f"precision_at_{top}_without_marks": float(want[plain].mean())
                    if plain
                    else float("nan"),
                }
            )
        if len(marked) >= target:
            break
        marked.extend(unmarked[:step])
    return {
        "interesting": list(interesting),
        "base_rate": float(want.mean()),
        "top": top,
        "step": step,
        "detector": "knn (k=20, cosine, cross-fitted over the folds)",
        "feedback": {
            "strength": settings.feedback.strength,
            "neighbours": settings.feedback.neighbours,
            "prior": settings.feedback.prior,
        },
        "points": out,
    }


__all__ = ["Pool", "simulate_corrections", "simulate_marks"]
