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
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

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
    """The ``predictions`` table's columns of one prediction."""
    return {
        "sha256": sha256,
        "label": pred.label,
        "confidence": pred.confidence,
        "probs": {t["label"]: t["probability"] for t in pred.top_k},
        "anomaly_score": pred.anomaly_score,
        "is_anomaly": pred.is_anomaly,
    }


def _batches(items: Sequence[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def predict_catalog(
    clf: Classifier,
    catalog: Catalog,
    run_id: str,
    data_dir: str | Path,
    rows: Iterable[dict[str, Any]] | None = None,
    only_missing: bool = True,
    batch_size: int = 64,
    progress: bool = True,
) -> dict[int, Prediction]:
    """Classify stored pictures (``rows``, default: every ``ok`` row) and store the answers.

    Returns ``{picture id: Prediction}`` of the pictures classified now. All classes are
    kept in ``probs`` (top-k = every class), so the gallery can filter by any of them.
    Each batch is one catalog transaction; a picture that cannot be read is logged and
    left without a prediction (the next run tries it again).
    """
    store = ImageStore(data_dir)
    rows = list(catalog.rows(status=OK) if rows is None else rows)
    done = set(catalog.predictions(run_id)) if only_missing else set()
    todo: list[tuple[dict[str, Any], Path]] = []
    seen: set[str] = set()
    for row in rows:
        sha, rel = row.get("sha256"), row.get("path")
        if not sha or not rel or row.get("status") != OK or sha in done or sha in seen:
            continue
        seen.add(sha)
        todo.append((row, store.abspath(str(rel))))
    out: dict[int, Prediction] = {}
    bar = progress_bar(
        total=len(todo), enabled=progress, unit="img", desc=f"classifying the catalog ({run_id})"
    )
    try:
        for chunk in _batches(todo, max(1, int(batch_size))):
            preds = clf.predict(
                [str(path) for _, path in chunk], top_k=len(clf.classes), batch_size=batch_size
            )
            good, vectors = [], {}
            for (row, _), pred in zip(chunk, preds, strict=True):
                if pred.error:
                    log.warning("picture %s (%s): %s", row["id"], row.get("date"), pred.error)
                    continue
                out[int(row["id"])] = pred
                good.append(prediction_row(str(row["sha256"]), pred))
                if pred.embedding is not None:
                    vectors[str(row["sha256"])] = pred.embedding
            with catalog.transaction():  # a batch's predictions and embeddings land together
                catalog.add_predictions(run_id, good)
                catalog.add_embeddings(run_id, vectors)
            bar.update(len(chunk))
    finally:
        bar.close()
    return out


__all__ = ["predict_catalog", "prediction_row", "run_id_for"]
