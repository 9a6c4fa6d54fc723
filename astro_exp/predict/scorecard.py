"""Score a checkpoint against a labelled folder, through the same predict path users call.

Why here and not in the training loop: a researcher's question is "how right is this model on
*my* pictures, labelled *my* way": any bundle, any folder, any labels file (``file,label``
CSV or JSON lines; ``gold.csv`` as it is). The pictures go through :class:`Classifier`
(decode limits, preprocessing, calibrated temperature of the bundle), so the figures are
what ``predict`` would have said.

Labels that the model has no class for (a four-class model scored against labels with
``other``) count as wrong in the overall figures, and the figures over the pictures whose
label the model knows are reported beside them (``within_classes``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchmetrics.classification as tmc

from astro_exp.data.label_files import LabelRow
from astro_exp.engine.plots import plot_confusion, plot_reliability
from astro_exp.errors import DataError
from astro_exp.predict.classifier import Classifier, Prediction
from astro_exp.predict.colour_views import colour_view

log = logging.getLogger(__name__)


@dataclass
class Scorecard:
    """Every figure of one evaluation; ``to_json`` is what ``evaluate`` writes."""

    classes: list[str]
    n: int  # pictures scored
    failed: list[dict[str, str]]  # pictures that could not be read: {file, error}
    metrics: dict[str, float]  # acc, top2_acc, {precision,recall,f1}_macro, per class, ece, nll
    within_classes: dict[str, float]  # the same over pictures whose label is one of classes
    confusion: list[list[int]]  # rows: true label (classes + unknown labels), columns: predicted
    confusion_rows: list[str]
    multilabel: dict[str, float] = field(default_factory=dict)  # mAP against `all`, per class AP
    rows: list[dict[str, Any]] = field(default_factory=list)  # per picture: file, label, prediction
    # with texts: the figures of the picture alone (the main ones are text + picture), the mAP
    # of the picture alone, the share of pictures whose text named a class, and the fusion used
    picture_only: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "classes": self.classes,
            "n": self.n,
            "failed": self.failed,
            "metrics": self.metrics,
            "within_classes": self.within_classes,
            "multilabel": self.multilabel,
            "confusion": {
                "rows": self.confusion_rows,
                "columns": self.classes,
                "counts": self.confusion,
            },
            "picture_only": self.picture_only,
            "pictures": self.rows,
        }


def _ece(probs: np.ndarray, truth: np.ndarray, bins: int = 15) -> tuple[float, np.ndarray]:
    """Expected calibration error (l1, equal-width bins) and the per-bin table for the plot.

    ``truth`` may hold -1 for a label the model has no class for (then always wrong)."""
    conf = probs.max(1)
    right = (probs.argmax(1) == truth).astype(float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    table = np.zeros((bins, 3))  # mean confidence, accuracy, count
    ece = 0.0
    for b in range(bins):
        m = (conf > edges[b]) & (conf <= edges[b + 1]) if b else (conf >= 0) & (conf <= edges[1])
        if m.any():
            table[b] = conf[m].mean(), right[m].mean(), m.sum()
            ece += m.mean() * abs(right[m].mean() - conf[m].mean())
    return float(ece), table


def ece(probs: np.ndarray, truth: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error (l1, 15 equal-width bins) of (N, C) probabilities."""
    return _ece(np.asarray(probs, dtype=float), np.asarray(truth), bins)[0]


def _class_metrics(probs: np.ndarray, truth: np.ndarray, classes: list[str]) -> dict[str, float]:
    pred = probs.argmax(1)
    out: dict[str, float] = {"acc": float((pred == truth).mean()) if len(truth) else float("nan")}
    top2 = np.argsort(-probs, axis=1)[:, :2]
    out["top2_acc"] = float((top2 == truth[:, None]).any(1).mean()) if len(truth) else float("nan")
    f1s = []
    for k, name in enumerate(classes):
        tp = float(((pred == k) & (truth == k)).sum())
        predicted, support = float((pred == k).sum()), float((truth == k).sum())
        p = tp / predicted if predicted else 0.0
        r = tp / support if support else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        out[f"precision/{name}"], out[f"recall/{name}"], out[f"f1/{name}"] = p, r, f1
        out[f"support/{name}"] = support
        f1s.append((f1, p, r, support))
    present = [x for x in f1s if x[3] > 0] or f1s  # macro over the classes the labels contain
    out["f1_macro"] = float(np.mean([x[0] for x in present]))
    out["precision_macro"] = float(np.mean([x[1] for x in present]))
    out["recall_macro"] = float(np.mean([x[2] for x in present]))
    out["ece"], _ = _ece(probs, truth)
    known = truth >= 0
    if known.any():
        out["nll"] = float(-np.log(np.clip(probs[known, truth[known]], 1e-12, 1.0)).mean())
    out["n"] = float(len(truth))
    return out


def uncalibrated(probs: np.ndarray, truth: np.ndarray, temperature: float) -> dict[str, float]:
    """ECE before temperature scaling, recovered from the calibrated probabilities: with
    ``p = softmax(z / T)``, ``softmax(T * log p) = softmax(z)`` exactly (multiclass bundles;
    a multilabel bundle's sigmoid probabilities do not invert that way: NaN)."""
    z = temperature * np.log(np.clip(probs, 1e-12, 1.0))
    raw = np.exp(z - z.max(1, keepdims=True))
    raw /= raw.sum(1, keepdims=True)
    return {"ece_uncalibrated": _ece(raw, truth)[0], "temperature": float(temperature)}


def score_probabilities(
    probs: np.ndarray, truth: np.ndarray, classes: list[str]
) -> dict[str, float]:
    """The figures of :func:`score_labelled` from probabilities already in hand (e.g. pooled
    over the folds of a cross-validation); ``truth`` -1 = a label the model has no class for."""
    return _class_metrics(np.asarray(probs, dtype=float), np.asarray(truth), list(classes))


def probability_vector(prediction: Prediction, index: dict[str, int]) -> np.ndarray:
    """A prediction's top-k probabilities as one (C,) vector in ``index`` order (0 elsewhere)."""
    p = np.zeros(len(index))
    for entry in prediction.top_k:
        p[index[entry["label"]]] = entry["probability"]
    return p


def score_labelled(
    classifier: Classifier,
    rows: list[LabelRow],
    root: str | Path,
    *,
    batch_size: int = 32,
    progress: bool = False,
    view: str | None = None,
    texts: Mapping[str, Any] | None = None,
) -> Scorecard:
    """Predict every row's picture (``root / row.file``) and score it against the row's label.

    Args:
        classifier: the bundle to score.
        rows: the labelled pictures.
        root: the folder their paths start from.
        batch_size, progress: as :meth:`Classifier.predict`.
        view: score a colour view of the pictures instead (:mod:`astro_exp.predict.colour_views`).
        texts: ``{file: (title, explanation)}`` (files as the rows name them): the figures are
            then of text and picture together, and ``picture_only`` holds the picture's alone.

    Returns:
        The :class:`Scorecard`.
    """
    classes = list(classifier.classes)
    index = {c: i for i, c in enumerate(classes)}
    preds = _predict_rows(classifier, rows, root, batch_size, progress, view, texts)
    got = _answers(rows, preds, index, classes, with_texts=texts is not None)
    P, y, kept = got.probs, got.truth, got.kept
    unknown = sorted({r.label for r in kept if r.label not in index})
    if unknown:
        log.info("labels the model has no class for (always wrong): %s", ", ".join(unknown))
    metrics = _class_metrics(P, y, classes)
    metrics.update(_before_temperature(classifier, got.alone, y))
    known = y >= 0
    within = _class_metrics(P[known], y[known], classes) if known.any() else {}
    row_names = classes + unknown
    confusion = np.zeros((len(row_names), len(classes)), dtype=np.int64)
    for r, k in zip(kept, P.argmax(1), strict=True):
        confusion[row_names.index(r.label), k] += 1
    multilabel = _multilabel(P, kept, classes)
    picture_only = {} if texts is None else _picture_only(classifier, got, classes, multilabel)
    return Scorecard(
        classes=classes,
        n=len(kept),
        failed=got.failed,
        metrics=metrics,
        within_classes=within,
        confusion=confusion.tolist(),
        confusion_rows=row_names,
        multilabel=multilabel,
        rows=got.pictures,
        picture_only=picture_only,
    )


@dataclass
class _Answers:
    """The rows whose picture could be read, with what the classifier said of each."""

    kept: list[LabelRow]
    probs: np.ndarray  # (N, C) the answer: picture and text together when texts were given
    alone: np.ndarray  # (N, C) what the picture alone said
    truth: np.ndarray  # (N,) each row's label as a class index; -1: a label the model lacks
    pictures: list[dict[str, Any]]  # the scorecard's per-picture rows
    failed: list[dict[str, str]]  # {file, error} of the pictures that could not be read


def _answers(
    rows: list[LabelRow],
    preds: list[Prediction],
    index: dict[str, int],
    classes: list[str],
    with_texts: bool,
) -> _Answers:
    """Each row's prediction as probability vectors, or as a failure (all failed: an error)."""
    probs, truth, kept, failed, per_picture, alone = [], [], [], [], [], []
    for row, pred in zip(rows, preds, strict=True):
        if pred.error:
            failed.append({"file": row.file, "error": pred.error})
            continue
        p = probability_vector(pred, index)
        probs.append(p)
        alone.append([pred.picture["probs"][c] for c in classes] if pred.picture else p)
        truth.append(index.get(row.label, -1))
        kept.append(row)
        per_picture.append(_picture_row(row, pred, p, with_texts=with_texts))
    if not kept:
        raise DataError(f"no picture of the labels file could be read ({failed[0]['error']})")
    if failed:
        log.warning(
            "%d of %d pictures could not be read; scored the other %d",
            len(failed),
            len(rows),
            len(kept),
        )
    return _Answers(
        kept,
        np.stack(probs),
        np.asarray(alone, dtype=float),
        np.asarray(truth),
        per_picture,
        failed,
    )


def _before_temperature(
    classifier: Classifier, alone: np.ndarray, truth: np.ndarray
) -> dict[str, float]:
    """The ECE before the bundle's temperature and the temperature itself."""
    if classifier.task == "multiclass":
        # the temperature inverts on the picture's own probabilities, not on fused ones: the
        # raw figure is the picture model's before its temperature, with or without texts
        return uncalibrated(alone, truth, classifier.temperature)
    return {"ece_uncalibrated": float("nan"), "temperature": float(classifier.temperature)}


def _picture_only(
    classifier: Classifier, got: _Answers, classes: list[str], multilabel: dict[str, float]
) -> dict[str, Any]:
    """With texts: the picture's own figures, the share of pictures whose text named a class,
    and the fusion used."""
    out: dict[str, Any] = {
        "metrics": _class_metrics(got.alone, got.truth, classes),
        "with_text": float(np.mean([r.get("evidence") == "picture+text" for r in got.pictures])),
        "fusion": None if classifier.fusion is None else classifier.fusion.describe(),
    }
    if multilabel:
        out["map"] = _multilabel(got.alone, got.kept, classes).get("map")
    return out


def _predict_rows(
    classifier: Classifier,
    rows: list[LabelRow],
    root: str | Path,
    batch_size: int,
    progress: bool,
    view: str | None,
    texts: Mapping[str, Any] | None,
) -> list[Prediction]:
    """Every row's picture (``root / row.file``) through ``classifier``, seen through ``view``."""
    root = Path(root).expanduser()
    paths = [str(root / r.file) for r in rows]
    missing = [p for p in paths if not Path(p).is_file()]
    if len(missing) == len(paths):
        raise DataError(
            f"none of the {len(paths)} pictures of the labels file is under root={root}; set root="
        )
    before, classifier.view = classifier.view, colour_view(view)
    try:
        return classifier.predict(
            paths,
            top_k=len(classifier.classes),
            batch_size=batch_size,
            progress=progress,
            texts=None if texts is None else [texts.get(r.file) for r in rows],
        )
    finally:
        classifier.view = before


def _picture_row(row: LabelRow, pred: Prediction, p: np.ndarray, with_texts: bool) -> dict:
    """One picture's answer in the scorecard's JSON (and what text and picture each said)."""
    out = {
        "file": row.file,
        "label": row.label,
        "prediction": pred.label,
        "confidence": pred.confidence,
        "right": pred.label == row.label,
        "probs": [round(float(v), 6) for v in p],
    }
    if with_texts:
        out["evidence"] = pred.evidence
        out["picture"] = (pred.picture or {}).get("label")
        out["text"] = (pred.text or {}).get("label")
    return out


def _multilabel(P: np.ndarray, kept: list[LabelRow], classes: list[str]) -> dict[str, float]:
    """AP of each class against the rows' ``all`` labels and their mean (``map``); empty when
    no row has more than one label."""
    out: dict[str, float] = {}
    if any(len(r.all) > 1 for r in kept):
        t = torch.tensor([[int(c in r.all) for c in classes] for r in kept])
        present = t.sum(0) > 0
        if present.any():
            ap = tmc.MultilabelAveragePrecision(len(classes), average="none")(
                torch.from_numpy(P).float(), t
            )
            for k, name in enumerate(classes):
                if present[k]:
                    out[f"ap/{name}"] = float(ap[k])
            out["map"] = float(np.mean(list(out.values())))
    return out


def write_figures(card: Scorecard, out_dir: str | Path, probs_title: str = "") -> dict[str, Path]:
    """``confusion_matrix.png`` and ``reliability.png`` in ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cm = np.asarray(card.confusion)
    if len(card.confusion_rows) > len(
        card.classes
    ):  # unknown labels: pad columns for a square plot
        cm = np.pad(cm, ((0, 0), (0, len(card.confusion_rows) - len(card.classes))))
    title = f"{probs_title} acc {card.metrics['acc']:.3f}, macro-F1 {card.metrics['f1_macro']:.3f}".strip()
    paths = {
        "confusion": plot_confusion(
            cm, card.confusion_rows, out_dir / "confusion_matrix.png", title=title
        )
    }
    conf = np.array([r["confidence"] for r in card.rows], dtype=float)
    right = np.array([r["right"] for r in card.rows], dtype=bool)
    paths["reliability"] = plot_reliability(
        conf, right, out_dir / "reliability.png", title=f"ECE {card.metrics['ece']:.3f}"
    )
    return paths
