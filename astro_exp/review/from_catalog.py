"""The review queue and the anomaly ranking over a catalog: one run's predictions, the weak
labels, a person's corrections and marks, read on any connection (the web app's read-only
one), ordered by :mod:`~astro_exp.review.queue` and :mod:`~astro_exp.review.feedback`."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from astro_exp.data.catalog import (
    read_corrections,
    read_embeddings,
    read_marks,
    read_predicted_pictures,
)
from astro_exp.review.feedback import MarkVote, robust_z
from astro_exp.review.queue import review_order
from astro_exp.review.settings import ReviewSettings


@dataclass
class Candidate:
    """One catalog picture with what the queue and the pages show of it."""

    picture_id: int
    sha256: str
    date: str | None
    title: str | None
    weak_label: str | None
    label: str | None = None  # the run's predicted label
    confidence: float | None = None
    probs: dict[str, float] = field(default_factory=dict)
    anomaly_score: float | None = None
    is_anomaly: bool | None = None
    rank_score: float | None = None  # the anomaly ranking's score (with the marks)
    mark: bool | None = None  # the person's anomaly mark, if any
    # the text+picture answer's parts (predict with the day's text): what each said alone
    picture_label: str | None = None
    picture_probs: dict[str, float] = field(default_factory=dict)
    text_probs: dict[str, float] | None = None
    evidence: str | None = None
    text_picture: float | None = None  # 1 - sum_c min(p_text, p_picture): disagreement

    def to_dict(self) -> dict[str, Any]:
        top = sorted(self.probs.items(), key=lambda kv: -kv[1])
        return {
            "id": self.picture_id,
            "sha256": self.sha256,
            "date": self.date,
            "title": self.title,
            "weak_label": self.weak_label,
            "label": self.label,
            "confidence": self.confidence,
            "top_k": [{"label": k, "probability": v} for k, v in top],
            "anomaly_score": self.anomaly_score,
            "is_anomaly": self.is_anomaly,
            "rank_score": self.rank_score,
            "mark": self.mark,
            "evidence": self.evidence,
            "picture": {"label": self.picture_label, "probs": self.picture_probs}
            if self.picture_label is not None
            else None,
            "text": {
                "label": max(self.text_probs, key=self.text_probs.get),
                "probs": self.text_probs,
            }
            if self.text_probs
            else None,
            "text_picture": self.text_picture,
        }


def _candidate(r: sqlite3.Row, full: bool = True) -> Candidate:
    """One row as a candidate; ``full=False`` leaves out what only a shown item needs (the
    picture's and the text's own probabilities): a ranking of 100,000 keeps no dicts of them."""
    return Candidate(
        picture_id=int(r["id"]),
        sha256=str(r["sha256"]),
        date=r["date"],
        title=r["title"],
        weak_label=_weak(r["labels"]),
        label=r["pred"],
        confidence=r["confidence"],
        probs=_probs(r["probs"]),
        anomaly_score=r["anomaly_score"],
        is_anomaly=None if r["is_anomaly"] is None else bool(r["is_anomaly"]),
        picture_label=r["picture_label"],
        picture_probs=_probs(r["picture_probs"]) if full else {},
        text_probs=(_probs(r["text_probs"]) or None) if full else None,
        evidence=r["evidence"],
        text_picture=r["text_picture"],
    )


def candidates(conn: sqlite3.Connection, run_id: str | None, full: bool = True) -> list[Candidate]:
    """Every stored picture (one per sha256, the lowest id) with the run's prediction.

    This reads the whole catalog: the web app keeps what is ranked from it (the review
    queue, the anomaly ranking) until the catalog changes, and reads a page's pictures
    back with :func:`candidates_by_id`."""
    rows = read_predicted_pictures(conn, run_id)
    out: list[Candidate] = []
    seen: set[str] = set()
    for r in rows:
        if r["sha256"] in seen:
            continue
        seen.add(r["sha256"])
        out.append(_candidate(r, full))
    return out


def candidates_by_id(
    conn: sqlite3.Connection, run_id: str | None, ids: list[int]
) -> list[Candidate]:
    """The pictures ``ids`` (primary-key lookups) with the run's prediction, in that order."""
    if not ids:
        return []
    found = {int(r["id"]): _candidate(r) for r in read_predicted_pictures(conn, run_id, ids)}
    return [found[i] for i in ids if i in found]


def queue_ranking(
    conn: sqlite3.Connection | None,
    run_id: str | None,
    settings: ReviewSettings,
    order: str | None = None,
    classes: list[str] | None = None,
    multilabel: bool = False,
    pool: list[Candidate] | None = None,
) -> list[int]:
    """Every candidate's picture id, the one to label first first, corrected ones included:
    each order scores a picture on its own, so leaving the corrected ones out afterwards
    (what :func:`review_queue` does, and the web app on each request over a kept ranking)
    gives the same queue as leaving them out before. ``pool``: the candidates already read
    (the web app reads them once for every order)."""
    todo = pool if pool is not None else candidates(conn, run_id, full=False)
    classes = list(classes or _classes(todo))
    probs = np.array(
        [
            [c.probs.get(k, np.nan) for k in classes] if c.probs else [np.nan] * len(classes)
            for c in todo
        ],
        dtype=np.float64,
    ).reshape(len(todo), len(classes))
    idx = review_order(
        order or settings.order,
        keys=[c.sha256 for c in todo],
        probs=probs,
        classes=classes,
        weak=[c.weak_label for c in todo],
        anomaly=[c.anomaly_score for c in todo],
        text_picture=[c.text_picture for c in todo],
        measure=settings.uncertainty,
        multilabel=multilabel,
        seed=settings.seed,
    )
    return [todo[int(i)].picture_id for i in idx]


def review_queue(
    conn: sqlite3.Connection,
    run_id: str | None,
    settings: ReviewSettings,
    order: str | None = None,
    classes: list[str] | None = None,
    multilabel: bool = False,
) -> tuple[list[Candidate], int]:
    """(the pictures not corrected yet, the one to label first first; how many are corrected)."""
    corrected = read_corrections(conn)
    by_id = {c.picture_id: c for c in candidates(conn, run_id)}
    ranking = queue_ranking(conn, run_id, settings, order, classes, multilabel)
    return [by_id[i] for i in ranking if i not in corrected], len(corrected)


def ranked_anomalies(
    conn: sqlite3.Connection,
    run_id: str | None,
    settings: ReviewSettings,
    pool: list[Candidate] | None = None,
) -> tuple[list[Candidate], int]:
    """(the run's scored pictures, highest rank first; how many marks shaped the ranking).

    A mark counts when its picture has an embedding in this run (``predict`` with a catalog
    stores them); without marks or embeddings the order is the detector's own.
    """
    pool = pool if pool is not None else candidates(conn, run_id, full=False)
    scored = [replace(c) for c in pool if c.anomaly_score is not None]  # copies: marks set below
    if not scored:
        return [], 0
    marks = read_marks(conn)
    for c in scored:
        c.mark = marks.get(c.picture_id)
    # the embeddings are read only when a mark can use them (most pages have none)
    any_mark = any(c.mark is not None for c in scored)
    vectors = read_embeddings(conn, run_id) if run_id and any_mark else {}
    scores = np.array([float(c.anomaly_score) for c in scored])  # type: ignore[arg-type]
    with_vec = [i for i, c in enumerate(scored) if c.sha256 in vectors]
    used = [i for i in with_vec if scored[i].mark is not None]
    rank, n_used = robust_z(scores), 0
    if used and len({len(vectors[scored[i].sha256]) for i in with_vec}) == 1:
        emb = np.stack([vectors[scored[i].sha256] for i in with_vec])
        pos = {i: k for k, i in enumerate(with_vec)}
        vote = MarkVote.fit(
            emb[[pos[i] for i in used]],
            np.array([bool(scored[i].mark) for i in used]),
            emb,
            settings.feedback,
        ).vote(emb)
        rank[with_vec] += settings.feedback.strength * vote  # no embedding: the detector's rank
        n_used = len(used)
    for c, s in zip(scored, rank, strict=True):
        c.rank_score = float(s)
    order = np.lexsort((np.array([c.picture_id for c in scored]), -rank))
    return [scored[int(i)] for i in order], n_used


def _weak(labels_json: str | None) -> str | None:
    if not labels_json:
        return None
    try:
        labels = json.loads(labels_json)
    except ValueError:
        return None
    primary = labels.get("primary") if isinstance(labels, dict) else None
    return str(primary) if primary else None


def _probs(text: str | None) -> dict[str, float]:
    if not text:
        return {}
    try:
        probs = json.loads(text)
    except ValueError:
        return {}
    return {str(k): float(v) for k, v in probs.items()} if isinstance(probs, dict) else {}


def _classes(items: list[Candidate]) -> list[str]:
    return sorted({k for c in items for k in c.probs})


__all__ = [
    "Candidate",
    "candidates",
    "candidates_by_id",
    "queue_ranking",
    "ranked_anomalies",
    "review_queue",
]
