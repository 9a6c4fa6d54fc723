"""What the Review and Anomalies pages and their JSON share: the review queue and the
anomaly ranking of a run as JSON-ready items, the classes a person labels with, and the
checks on an answer (a JSON body, a known label) before it is stored.

The answers are JSON-only on purpose: the ``/api`` blueprint is exempt from CSRF tokens, and
a cross-site ``<form>`` can post only form encodings or ``text/plain``, never
``application/json`` without a CORS preflight this server never grants.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from flask import request, url_for

from astro_exp.data.catalog import MAX_WHO, CatalogReader
from astro_exp.review.from_catalog import (
    Candidate,
    candidates,
    candidates_by_id,
    queue_ranking,
    ranked_anomalies,
)
from astro_exp.review.queue import QUEUE_ORDERS
from astro_exp.web.state import WebState

MAX_BATCH = 200  # items one queue request returns at most
MULTI_SEP = "|"  # a multi-label answer is one correction: "galaxy|star"


class BadAnswer(ValueError):
    """A review answer or mark the server refuses; ``status`` is its HTTP code."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ReviewTask:
    """What a person answers with: the classes (in key order: key 1 is ``classes[0]``), one
    label or several, and each class's threshold (which labels a multi-label model says)."""

    classes: list[str]
    task: str
    thresholds: dict[str, float]

    @property
    def multilabel(self) -> bool:
        return self.task == "multilabel"

    def suggested(self, c: Candidate) -> list[str]:
        """The model's answer, what Enter agrees with (multi-label: every class over its
        threshold, else its top label)."""
        if not self.multilabel:
            return [c.label] if c.label else []
        over = [k for k in self.classes if c.probs.get(k, 0.0) >= self.thresholds.get(k, 0.5)]
        return over or ([c.label] if c.label else [])


def review_task(st: WebState, run_id: str | None) -> ReviewTask:
    """The served model's classes and task; without a model, the classes the run's stored
    probabilities name (sorted) and the task its run folder's config names."""
    info = st.model.info()
    if info.get("loaded"):
        classes = [str(k) for k in info.get("classes") or []]
        thr: dict[str, float] = {}
        clf = st.model.classifier
        if clf is not None and getattr(clf, "thresholds", None) is not None:
            thr = {k: float(t) for k, t in zip(classes, clf.thresholds, strict=False)}
        return ReviewTask(classes, str(info.get("task") or "multiclass"), thr)
    classes = st.cached(("review_classes", run_id), lambda cat: cat.run_classes(run_id))
    return ReviewTask(list(classes), _run_task(st, run_id), {})


def _run_task(st: WebState, run_id: str | None) -> str:
    """The task the run's own config names (``.hydra/config.yaml``), else multiclass."""
    entry = st.runs.get(run_id) if run_id else None
    path = entry.run.path / ".hydra" / "config.yaml" if entry else None
    if path is None or not path.is_file():
        return "multiclass"
    try:
        cfg = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return "multiclass"
    task = cfg.get("task") if isinstance(cfg, dict) else None
    name = task.get("name") if isinstance(task, dict) else None
    return "multilabel" if name == "multilabel" else "multiclass"


def item(c: Candidate, task: ReviewTask | None = None) -> dict[str, Any]:
    """A candidate as the pages' JSON: :meth:`Candidate.to_dict` plus its addresses."""
    out = c.to_dict()
    out.update(
        url=url_for("gallery.picture", picture_id=c.picture_id),
        thumb_url=url_for("gallery.thumb", picture_id=c.picture_id),
        image_url=url_for("gallery.original", picture_id=c.picture_id),
    )
    if task is not None:
        out["suggested"] = task.suggested(c)
    return out


def parse_order(st: WebState, value: str | None) -> str:
    """The queue order a request asks for (none: ``review.order``); an unknown one is a 400."""
    if not value:
        return st.review.order
    if value not in QUEUE_ORDERS:
        raise BadAnswer(400, f"order={value[:40]!r} must be one of {', '.join(QUEUE_ORDERS)}")
    return value


def queue_payload(
    st: WebState, run_id: str | None, order: str, n: int, offset: int = 0
) -> dict[str, Any]:
    """``/api/review``: the next ``n`` pictures to label (after ``offset`` of them) of the
    run's queue; corrected pictures are not in it, so ``total`` is what is left to do.

    Every order scores each picture on its own (with a fixed tie-break), so a picture
    corrected meanwhile drops out without reordering the rest: a client that asks again with
    ``offset`` = the pictures it holds and has not answered gets the ones that follow them.
    The order over the whole catalog is kept until the catalog changes
    (:meth:`WebState.ranked`); a request reads the corrections and its own pictures only.
    """
    task = review_task(st, run_id)
    key = (
        "queue",
        run_id,
        order,
        st.review.uncertainty,
        st.review.seed,
        task.multilabel,
        tuple(task.classes),
    )
    ranking, members = st.ranked(
        key,
        lambda cat: _with_set(
            queue_ranking(
                cat.conn,
                run_id,
                st.review,
                order,
                task.classes or None,
                task.multilabel,
                pool=_pool(st, run_id),
            )
        ),
    )
    n = max(1, min(MAX_BATCH, n))
    offset = max(0, offset)
    with st.catalog() as cat:
        corrected = cat.corrections()
        left = [i for i in ranking if i not in corrected] if corrected else ranking
        page = candidates_by_id(cat.conn, run_id, left[offset : offset + n])
    return {
        "run_id": run_id,
        "order": order,
        "orders": list(QUEUE_ORDERS),
        "total": len(members) - sum(1 for i in corrected if i in members),
        "corrected": len(corrected),
        "classes": task.classes,
        "task": task.task,
        "offset": offset,
        "items": [item(c, task) for c in page],
    }


def _pool(st: WebState, run_id: str | None) -> list[Candidate]:
    """The run's candidates, read once per catalog version for every order and the anomaly
    ranking (what they are ranked from; nobody changes them in place)."""
    return st.ranked(("candidates", run_id), lambda cat: candidates(cat.conn, run_id, full=False))


def _with_set(ranking: list[int]) -> tuple[list[int], frozenset[int]]:
    return ranking, frozenset(ranking)


def anomaly_ranking(st: WebState, run_id: str | None, every: bool) -> tuple[list[Candidate], int]:
    """(the run's flagged pictures, or with ``every`` all its scored ones, by the rank the
    person's marks give them; how many marks shaped that rank), kept until the catalog or
    the marks change (:meth:`WebState.ranked`)."""
    if not st.has_catalog or run_id is None:
        return [], 0

    def compute(cat: CatalogReader) -> tuple[list[Candidate], list[Candidate], int]:
        ranked, n_used = ranked_anomalies(cat.conn, run_id, st.review, pool=_pool(st, run_id))
        return ranked, [c for c in ranked if c.is_anomaly], n_used

    ranked, flagged, n_used = st.ranked(("anomalies", run_id), compute)
    return (ranked if every else flagged), n_used


def json_body() -> dict[str, Any]:
    """The request's JSON object; anything else (a form post, ``text/plain``) is refused."""
    if not request.is_json:
        raise BadAnswer(415, "send JSON (Content-Type: application/json)")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadAnswer(400, "the body must be a JSON object")
    return body


def answer_label(body: dict[str, Any], task: ReviewTask) -> str:
    """The label to store from ``{"label": ...}`` or ``{"labels": [...]}``, checked against
    the classes (multi-label: one correction of the labels in class order, ``a|b``)."""
    raw = body.get("labels", body.get("label"))
    labels = [raw] if isinstance(raw, str) else raw
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
        key = '"labels": ["galaxy", ...]' if task.multilabel else '"label": "galaxy"'
        raise BadAnswer(400, f"send {{{key}}}")
    unknown = [x for x in labels if x not in task.classes]
    if unknown:
        raise BadAnswer(
            400,
            f"unknown label {unknown[0][:60]!r}; the classes are {', '.join(task.classes)}",
        )
    chosen = set(labels)
    if not task.multilabel and len(chosen) > 1:
        raise BadAnswer(400, "this model gives one label per picture; send one label")
    return MULTI_SEP.join(k for k in task.classes if k in chosen)


def answer_who(body: dict[str, Any], default: str) -> str:
    """Who answered (the body's ``who``, else the server's ``default_who``)."""
    who = body.get("who")
    if who is None:
        return default
    if not isinstance(who, str):
        raise BadAnswer(400, '"who" must be a string')
    return who.strip()[:MAX_WHO] or default


def answer_interesting(body: dict[str, Any]) -> bool:
    value = body.get("interesting")
    if not isinstance(value, bool):
        raise BadAnswer(400, 'send {"interesting": true} or {"interesting": false}')
    return value


__all__ = [
    "BadAnswer",
    "ReviewTask",
    "anomaly_ranking",
    "answer_interesting",
    "answer_label",
    "answer_who",
    "item",
    "json_body",
    "parse_order",
    "queue_payload",
    "review_task",
]
