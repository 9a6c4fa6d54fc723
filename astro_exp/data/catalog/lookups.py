"""The catalog read by key for the web app's pages: one picture in full, the list columns of
given pictures, the pictures a neighbour reference names, the drop-downs' values, the runs
with predictions, and the version keys that cached counts and rankings are kept under.

Every statement is a SELECT that reads an index (the web app runs them on a read-only
connection, one per request: ``tests/test_catalog_scale.py`` checks their plans); the
gallery's filtered list is :mod:`~astro_exp.data.catalog.gallery`.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from astro_exp.data.catalog.schema import CORRECTIONS, MARKS, PICTURES, PREDICTIONS, WEAK_SQL

CLASS_SAMPLE = 500  # prediction rows read to learn a run's classes (run_classes)


def truth_sql() -> str:
    """The catalog label of ``p``: newest human correction, else the weak labeller's primary."""
    return (
        f"COALESCE((SELECT c.label FROM {CORRECTIONS} c WHERE c.picture_id = p.id "
        f"ORDER BY c.created_at DESC, c.id DESC LIMIT 1), {WEAK_SQL})"
    )


def with_prediction(run_id_param: str = ":run_id") -> str:
    """Pictures ``p``, each with the run's prediction ``pr`` where it has one."""
    return (
        f"{PICTURES} p LEFT JOIN {PREDICTIONS} pr ON pr.sha256 = p.sha256 "
        f"AND pr.run_id = {run_id_param}"
    )


def _list_columns() -> str:
    """A picture's columns in a list (the gallery, the Labels and Anomalies pages,
    ``/api/pictures``), with the run's prediction."""
    return (
        "p.id, p.source, p.date, p.title, p.sha256, p.path, p.media_type, p.width, p.height, "
        f"{WEAK_SQL} AS weak_label, "
        f"{truth_sql()} AS truth, "
        "pr.label AS pred_label, pr.confidence, pr.anomaly_score, pr.is_anomaly, "
        "pr.picture_label, pr.picture_confidence, pr.text_probs IS NOT NULL AS has_text, "
        "pr.evidence"
    )


def rows_by_id(
    conn: sqlite3.Connection, ids: list[int], run_id: str | None
) -> list[dict[str, Any]]:
    """The list columns of the pictures ``ids`` (with the run's prediction), in that order:
    the second step of :func:`~astro_exp.data.catalog.gallery.list_pictures`, and how a page
    shows a list ranked elsewhere (the Anomalies page's ranking by a person's marks).

    Args:
        conn: a connection to the catalog (read-only will do).
        ids: picture ids, in the order wanted.
        run_id: whose predictions fill the ``pred_label``, ``confidence``, ... columns.

    Returns:
        One dict per picture found, in the order of ``ids`` (a missing id is left out).
    """
    if not ids:
        return []
    marks = ",".join("?" * len(ids))
    rows = {
        r["id"]: dict(r)
        for r in conn.execute(
            f"SELECT {_list_columns()} FROM {with_prediction('?')} WHERE p.id IN ({marks})",
            [run_id, *ids],
        )
    }
    return [rows[i] for i in ids if i in rows]


def get_picture(
    conn: sqlite3.Connection, picture_id: int, run_id: str | None
) -> dict[str, Any] | None:
    """Every catalog field of one picture, its run prediction (probs parsed) and corrections.

    Args:
        conn: a connection to the catalog (read-only will do).
        picture_id: the picture's catalog id.
        run_id: whose prediction is read beside it (None: none).

    Returns:
        The row as a dict (``labels``, ``probs``, ``picture_probs``, ``text_probs`` parsed,
        ``corrections`` newest first), or None when there is no such picture.
    """
    row = conn.execute(
        f"SELECT p.*, {truth_sql()} AS truth, pr.label AS pred_label, pr.confidence, pr.probs, "
        "pr.anomaly_score, pr.is_anomaly, pr.picture_label, pr.picture_confidence, "
        f"pr.picture_probs, pr.text_probs, pr.evidence FROM {with_prediction()} WHERE p.id = :id",
        {"id": int(picture_id), "run_id": run_id},
    ).fetchone()
    if row is None:
        return None
    out = dict(row)
    out["labels"] = _json(out.get("labels")) or {}
    for key in ("probs", "picture_probs", "text_probs"):
        out[key] = _json(out.get(key))
    out["corrections"] = [
        dict(r)
        for r in conn.execute(
            f"SELECT label, who, created_at FROM {CORRECTIONS} WHERE picture_id = ? ORDER BY created_at DESC, id DESC",
            (int(picture_id),),
        )
    ]
    return out


def find_by_ref(conn: sqlite3.Connection, refs: list[str]) -> dict[str, dict[str, Any]]:
    """Resolve neighbour ids (catalog id, sha256, date or store path) to pictures
    (``{ref: {id, title, sha256}}``; a ref that names none is left out)."""
    found: dict[str, dict[str, Any]] = {}
    for ref in dict.fromkeys(refs):
        ref_s = str(ref)
        row = None
        if ref_s.isdigit():
            row = conn.execute(
                f"SELECT id, title, sha256 FROM {PICTURES} WHERE id = ?", (int(ref_s),)
            ).fetchone()
        if row is None and len(ref_s) == 64:
            row = conn.execute(
                f"SELECT id, title, sha256 FROM {PICTURES} WHERE sha256 = ? LIMIT 1", (ref_s,)
            ).fetchone()
        if row is None:
            row = conn.execute(
                f"SELECT id, title, sha256 FROM {PICTURES} WHERE path = ? OR date = ? LIMIT 1",
                (ref_s, ref_s),
            ).fetchone()
        if row is not None:
            found[ref_s] = dict(row)
    return found


def sources(conn: sqlite3.Connection) -> list[str]:
    """The sources offered in the gallery's drop-down, sorted."""
    return [
        r[0]
        for r in conn.execute(
            f"SELECT DISTINCT source FROM {PICTURES} WHERE source IS NOT NULL ORDER BY 1"
        )
    ]


def label_values(conn: sqlite3.Connection, run_id: str | None) -> tuple[list[str], list[str]]:
    """(predicted labels of the run, catalog labels) for the filter drop-downs."""
    predicted = [
        r[0]
        for r in conn.execute(
            f"SELECT DISTINCT label FROM {PREDICTIONS} WHERE run_id = ? AND label IS NOT NULL ORDER BY 1",
            (run_id,),
        )
    ]
    weak = {
        r[0]
        for r in conn.execute(
            f"SELECT DISTINCT json_extract(labels, '$.primary') FROM {PICTURES} WHERE labels IS NOT NULL"
        )
    }
    weak |= {r[0] for r in conn.execute(f"SELECT DISTINCT label FROM {CORRECTIONS}")}
    return predicted, sorted(v for v in weak if v)


def run_ids(conn: sqlite3.Connection) -> list[str]:
    """Runs with predictions in the catalog, newest first (by their latest row)."""
    try:
        rows = conn.execute(
            f"SELECT run_id, MAX(rowid) AS last FROM {PREDICTIONS} GROUP BY run_id ORDER BY last DESC"
        )
        return [r[0] for r in rows]
    except sqlite3.OperationalError:  # no predictions table yet
        return []


def run_classes(conn: sqlite3.Connection, run_id: str | None) -> list[str]:
    """The classes a run's stored probabilities name (of its first :data:`CLASS_SAMPLE`
    rows, sorted): what a person labels with when no model is loaded."""
    found: set[str] = set()
    for (probs,) in conn.execute(
        f"SELECT probs FROM {PREDICTIONS} WHERE run_id = ? AND probs IS NOT NULL LIMIT ?",
        (run_id or "", CLASS_SAMPLE),
    ):
        try:
            value = json.loads(probs)
        except ValueError:
            continue
        if isinstance(value, dict):
            found.update(str(k) for k in value)
    return sorted(found)


def data_version(conn: sqlite3.Connection) -> tuple:
    """What changes when pictures, predictions or corrections are added (three index
    lookups, never a scan): the key that cached counts and rankings are kept under."""
    row = conn.execute(
        f"SELECT (SELECT MAX(id) FROM {PICTURES}), (SELECT MAX(rowid) FROM {PREDICTIONS}), "
        f"(SELECT MAX(id) FROM {CORRECTIONS})"
    ).fetchone()
    return tuple(row)


def marks_version(conn: sqlite3.Connection) -> int | None:
    """The newest anomaly mark's id (a mark changes the anomaly ranking)."""
    try:
        return conn.execute(f"SELECT MAX(id) FROM {MARKS}").fetchone()[0]
    except sqlite3.OperationalError:  # a catalog older than the marks
        return None


def _json(value: Any) -> Any:
    if value is None or isinstance(value, dict | list):
        return value
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return None


class Lookups:
    """The pages' reads by key (a part of :class:`~astro_exp.data.catalog.Catalog` and of
    the read-only :class:`~astro_exp.data.catalog.CatalogReader`)."""

    conn: sqlite3.Connection

    def rows_by_id(self, ids: list[int], run_id: str | None) -> list[dict[str, Any]]:
        """:func:`rows_by_id` on this catalog."""
        return rows_by_id(self.conn, ids, run_id)

    def get_picture(self, picture_id: int, run_id: str | None) -> dict[str, Any] | None:
        """:func:`get_picture` on this catalog."""
        return get_picture(self.conn, picture_id, run_id)

    def find_by_ref(self, refs: list[str]) -> dict[str, dict[str, Any]]:
        """:func:`find_by_ref` on this catalog."""
        return find_by_ref(self.conn, refs)

    def sources(self) -> list[str]:
        """:func:`sources` of this catalog."""
        return sources(self.conn)

    def label_values(self, run_id: str | None) -> tuple[list[str], list[str]]:
        """:func:`label_values` of this catalog."""
        return label_values(self.conn, run_id)

    def run_ids(self) -> list[str]:
        """:func:`run_ids` of this catalog."""
        return run_ids(self.conn)

    def run_classes(self, run_id: str | None) -> list[str]:
        """:func:`run_classes` of this catalog."""
        return run_classes(self.conn, run_id)

    def data_version(self) -> tuple:
        """:func:`data_version` of this catalog."""
        return data_version(self.conn)

    def marks_version(self) -> int | None:
        """:func:`marks_version` of this catalog."""
        return marks_version(self.conn)
