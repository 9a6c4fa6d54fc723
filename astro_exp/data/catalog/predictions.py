"""A run's predictions and embeddings of the catalog's pictures (``predict catalog=true``)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numpy as np

from astro_exp.data.catalog.schema import (
    EMBEDDINGS,
    OK,
    PICTURES,
    PREDICTION_COLUMNS,
    PREDICTIONS,
    _has_table,
    now_iso,
)


class Predictions:
    """Predictions and embeddings (a part of :class:`~astro_exp.data.catalog.Catalog`)."""

    conn: sqlite3.Connection
    path: Path
    transaction: Callable[[], AbstractContextManager[sqlite3.Connection]]

    def add_predictions(self, run_id: str, rows: Iterable[Mapping[str, Any]]) -> int:
        """Store a run's predictions keyed by (run_id, sha256); a re-run of predict replaces them.

        Each row: sha256, label, confidence, probs (dict), anomaly_score, is_anomaly, and
        from a text+picture answer picture_label, picture_confidence, picture_probs (dict),
        text_probs (dict or None), evidence. A row without the picture's own answer is a
        picture-only one (the picture's fields are the answer's, evidence ``picture``).
        ``text_picture`` (the review order) is computed here, so every writer stores it alike.
        """
        when = now_iso()
        data = []
        for r in rows:
            probs = r.get("probs")
            picture_probs = r.get("picture_probs", probs)
            text_probs = r.get("text_probs")
            data.append(
                (
                    run_id,
                    str(r["sha256"]),
                    r.get("label"),
                    _float(r.get("confidence")),
                    _json_or_none(probs),
                    _float(r.get("anomaly_score")),
                    None if r.get("is_anomaly") is None else int(bool(r["is_anomaly"])),
                    when,
                    r.get("picture_label", r.get("label")),
                    _float(r.get("picture_confidence", r.get("confidence"))),
                    _json_or_none(picture_probs),
                    _json_or_none(text_probs),
                    r.get("evidence") or ("picture+text" if text_probs else "picture"),
                    text_picture_gap(text_probs, picture_probs),
                )
            )
        with self.transaction():
            self.conn.executemany(
                f"INSERT OR REPLACE INTO {PREDICTIONS} ({', '.join(PREDICTION_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(PREDICTION_COLUMNS))})",
                data,
            )
        return len(data)

    def predicted_shas(self, run_id: str) -> set[str]:
        """The pictures (sha256) a run has an answer for: what a resumed predict skips."""
        rows = self.conn.execute(f"SELECT sha256 FROM {PREDICTIONS} WHERE run_id = ?", (run_id,))
        return {r[0] for r in rows}

    def add_embeddings(self, run_id: str, vectors: Mapping[str, np.ndarray]) -> int:
        """Store a run's embeddings ``{sha256: (D,) vector}`` (float32) beside its predictions:
        the anomaly marks are spread over them, so a re-rank needs no forward pass."""
        data = []
        for sha, v in vectors.items():
            a = np.ascontiguousarray(np.asarray(v, dtype=np.float32).ravel())
            data.append((run_id, str(sha), int(a.size), a.tobytes()))
        with self.transaction():
            self.conn.executemany(f"INSERT OR REPLACE INTO {EMBEDDINGS} VALUES (?,?,?,?)", data)
        return len(data)

    def embeddings(self, run_id: str) -> dict[str, np.ndarray]:
        """{sha256: float32 vector} of one run (empty when it stored none)."""
        return read_embeddings(self.conn, run_id)

    def predictions(self, run_id: str) -> dict[str, dict[str, Any]]:
        """{sha256: prediction} of one run (probs, picture_probs, text_probs parsed)."""
        out = {}
        for r in self.conn.execute(f"SELECT * FROM {PREDICTIONS} WHERE run_id = ?", (run_id,)):
            d = dict(r)
            for key in ("probs", "picture_probs", "text_probs"):
                d[key] = json.loads(d[key]) if d.get(key) else None
            d["is_anomaly"] = None if d["is_anomaly"] is None else bool(d["is_anomaly"])
            out[d["sha256"]] = d
        return out


def read_embeddings(conn: sqlite3.Connection, run_id: str) -> dict[str, np.ndarray]:
    """{sha256: float32 vector} a run stored with :meth:`Catalog.add_embeddings`."""
    if not _has_table(conn, EMBEDDINGS):
        return {}
    rows = conn.execute(f"SELECT sha256, dim, vector FROM {EMBEDDINGS} WHERE run_id = ?", (run_id,))
    return {
        str(sha): np.frombuffer(blob, dtype=np.float32, count=int(dim)) for sha, dim, blob in rows
    }


_PREDICTED_PICTURES = (
    "SELECT p.id, p.sha256, p.date, p.title, p.labels, pr.label AS pred, pr.confidence, "
    "pr.probs, pr.anomaly_score, pr.is_anomaly, pr.picture_label, pr.picture_probs, "
    "pr.text_probs, pr.evidence, pr.text_picture "
    f"FROM {PICTURES} p LEFT JOIN {PREDICTIONS} pr ON pr.sha256 = p.sha256 AND pr.run_id = ? "
)


def read_predicted_pictures(
    conn: sqlite3.Connection, run_id: str | None, ids: list[int] | None = None
) -> list[sqlite3.Row]:
    """Pictures with a run's prediction (``pred``, ``confidence``, ... NULL where the run has
    none): every stored picture by id (``ids`` None; the review queue and the anomaly ranking
    read them all), or the pictures ``ids`` (primary-key lookups, in no set order)."""
    if ids is None:
        return conn.execute(
            _PREDICTED_PICTURES + "WHERE p.status = ? AND p.sha256 IS NOT NULL ORDER BY p.id",
            (run_id or "", OK),
        ).fetchall()
    return conn.execute(
        _PREDICTED_PICTURES + f"WHERE p.id IN ({','.join('?' * len(ids))})",
        [run_id or "", *ids],
    ).fetchall()


def text_picture_gap(
    text_probs: Mapping[str, float] | None, picture_probs: Mapping[str, float] | None
) -> float | None:
    """How much the text and the picture disagree: 1 - sum_c min(p_text(c), p_picture(c))
    (0: the same distribution, 1: no class in common); None when either is missing."""
    if not text_probs or not picture_probs:
        return None
    overlap = sum(
        min(float(p), float(picture_probs.get(k, 0.0) or 0.0)) for k, p in text_probs.items()
    )
    return round(max(0.0, 1.0 - overlap), 6)


def _json_or_none(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
