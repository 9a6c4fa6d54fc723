"""Classify the catalog's stored pictures with a bundle and keep the answers in its
``predictions`` table (what the web gallery, the anomalies page and the watcher read).

Predictions (and the detector's embedding of each picture, which the Anomalies page spreads a
person's marks over) are keyed by (run id, sha256): a picture stored under two days is classified
once, a re-run skips pictures this run already has (``only_missing``), and a killed run
keeps every batch it committed. The run id is the run folder's path under ``outputs/``
(``runs/2026-11-30/15-41-21_synthetic-resnet-light``), the id the web app's run list uses.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

from astro_exp.data.catalog import OK, Catalog
from astro_exp.data.store import ImageStore
from astro_exp.predict.classifier import Classifier, Prediction
from astro_exp.progress import progress as progress_bar

log = logging.getLogger(__name__)


def run_id_for(ckpt_path: str | Path, outputs_dir: str | Path | None = None) -> str:
    """The id of the run a checkpoint belongs to (``<run folder>/checkpoints/best.pt``):
    its folder's posix path under ``outputs_dir`` when it lies there, else the folder name."""
    ckpt = Path(ckpt_path).resolve()
    run_dir = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent
    if outputs_dir is not None:
        try:
            return run_dir.relative_to(Path(outputs_dir).resolve()).as_posix()
        except ValueError:
            pass
    return run_dir.name


def prediction_row(sha256: str, pred: Prediction) -> dict[str, Any]:
    """The ``predictions`` table's columns of one prediction: the answer (fused when the
    day's text was given), what the picture alone said, what the text alone said (None
    without a text) and which decided; a prediction without ``picture`` is a picture-only one."""
    probs = {t["label"]: t["probability"] for t in pred.top_k}
    picture = pred.picture or {}
    text = pred.text or None
    text_probs = dict(text["probs"]) if text and text.get("probs") else None
    return {
        "sha256": sha256,
        "label": pred.label,
        "confidence": pred.confidence,
        "probs": probs,
        "anomaly_score": pred.anomaly_score,
        "is_anomaly": pred.is_anomaly,
        "picture_label": picture.get("label", pred.label),
        "picture_confidence": picture.get("confidence", pred.confidence),
        "picture_probs": dict(picture["probs"]) if picture.get("probs") else probs,
        "text_probs": text_probs,
        "evidence": pred.evidence or ("picture+text" if text_probs else "picture"),
    }


def predict_catalog(
    clf: Classifier,
    catalog: Catalog,
    run_id: str,
    data_dir: str | Path,
    rows: Iterable[dict[str, Any]] | None = None,
    only_missing: bool = True,
    batch_size: int = 64,
    progress: bool = True,
    keep: bool = True,
) -> dict[int, Prediction]:
    """Classify stored pictures (``rows``, default: every ``ok`` row) and store the answers.

    Returns ``{picture id: Prediction}`` of the pictures classified now (``keep=False``: an
    empty dict, so 10,000 predictions are not held in memory by a caller that only counts).
    All classes are kept in ``probs`` (top-k = every class), so the gallery can filter by any.
    One stream over every picture (the classifier decodes the next batch while the model
    runs on this one), committed batch by batch: a killed run keeps every batch it
    committed, and the re-run skips them. Each row's (title, explanation) goes with it when
    the classifier reads texts. A picture that cannot be read is logged and left without a
    prediction (the next run tries it again).
    """
    todo = _to_classify(catalog, ImageStore(data_dir), rows, run_id, only_missing)
    out: dict[int, Prediction] = {}
    batch_size = max(1, int(batch_size))
    bar = progress_bar(
        total=len(todo), enabled=progress, unit="img", desc=f"classifying the catalog ({run_id})"
    )
    batch = _Batch(catalog, run_id, bar)
    try:
        preds = clf.predict_iter(
            [str(t.path) for t in todo],
            top_k=len(clf.classes),
            batch_size=batch_size,
            texts=[t.text for t in todo],  # the day's words: text and picture together
        )
        for t, pred in zip(todo, preds, strict=True):
            if pred.error:
                log.warning("picture %s (%s): %s", t.id, t.date, pred.error)
            elif keep:
                out[t.id] = pred
            batch.add(t.sha256, pred)
            if batch.pending >= batch_size:
                batch.commit()
        if batch.pending:
            batch.commit()
    finally:
        bar.close()
    return out


class _Picture(NamedTuple):
    """A stored picture to classify."""

    id: int
    sha256: str
    date: str | None
    path: Path
    text: tuple[str, str] | None  # (title, explanation), None without words


def _to_classify(
    catalog: Catalog,
    store: ImageStore,
    rows: Iterable[dict[str, Any]] | None,
    run_id: str,
    only_missing: bool,
) -> list[_Picture]:
    """The ``ok`` rows' pictures, each sha256 once, less those the run already classified."""
    rows = catalog.rows(status=OK) if rows is None else rows
    done = catalog.predicted_shas(run_id) if only_missing else set()
    todo: list[_Picture] = []
    seen: set[str] = set()
    for row in rows:
        sha, rel = row.get("sha256"), row.get("path")
        if not sha or not rel or row.get("status") != OK or sha in done or sha in seen:
            continue
        seen.add(sha)
        text = (row.get("title") or "", row.get("explanation") or "")
        todo.append(
            _Picture(
                int(row["id"]),
                str(sha),
                row.get("date"),
                store.abspath(str(rel)),
                text if any(text) else None,
            )
        )
    return todo


class _Batch:
    """The predictions and embeddings not yet committed; a commit writes them together."""

    def __init__(self, catalog: Catalog, run_id: str, bar: Any) -> None:
        self.catalog, self.run_id, self.bar = catalog, run_id, bar
        self.good: list[dict[str, Any]] = []
        self.vectors: dict[str, Any] = {}
        self.pending = 0  # pictures since the last commit, failed ones included

    def add(self, sha256: str, pred: Prediction) -> None:
        """One picture's answer (a failed one only counts)."""
        self.pending += 1
        if pred.error:
            return
        self.good.append(prediction_row(sha256, pred))
        if pred.embedding is not None:
            self.vectors[sha256] = pred.embedding

    def commit(self) -> None:
        with self.catalog.transaction():  # a batch's predictions and embeddings land together
            self.catalog.add_predictions(self.run_id, self.good)
            self.catalog.add_embeddings(self.run_id, self.vectors)
        self.bar.update(self.pending)
        self.good, self.vectors, self.pending = [], {}, 0


__all__ = ["predict_catalog", "prediction_row", "run_id_for"]
