"""Read-side SQL over the catalog for the pages: filtered, sorted, paged picture lists that
stay fast with tens of thousands of rows (one indexed query for a page, one for the count).

The catalog module (:mod:`astro_exp.data.catalog`) owns the schema and every write; the
table names come from it (:class:`Schema`). Every query here is a SELECT on the read-only
connection it provides (:func:`~astro_exp.data.catalog.connect_read_only`), one per request: a page can never change the
catalog, and SQLite's WAL lets a scraper write at the same time.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from astro_exp.data.catalog import CORRECTIONS, PICTURES, PREDICTIONS

SORTS = {
    # name -> ORDER BY (NULLs last, id breaks ties so paging is stable)
    "date": "p.date {dir} , p.id {dir}",
    "confidence": "pr.confidence IS NULL, pr.confidence {dir}, p.id DESC",
    "anomaly": "pr.anomaly_score IS NULL, pr.anomaly_score {dir}, p.id DESC",
    "title": "p.title COLLATE NOCASE {dir}, p.id {dir}",
}
MAX_PAGE_SIZE = 200


@dataclass(frozen=True)
class Schema:
    """Table names of the catalog (``astro_exp.data.catalog``)."""

    pictures: str = PICTURES
    corrections: str = CORRECTIONS
    predictions: str = PREDICTIONS


SCHEMA = Schema()


@dataclass
class Filters:
    """The gallery's query string, parsed and clamped (bad values fall back to defaults)."""

    label: str = ""  # predicted label (of the shown run)
    truth: str = ""  # catalog label: the latest human correction, else the weak label
    source: str = ""
    date_from: str = ""
    date_to: str = ""
    q: str = ""
    anomalies: bool = False
    conf_min: float | None = None
    conf_max: float | None = None
    sort: str = "date"
    order: str = "desc"
    page: int = 1
    per_page: int = 48
    errors: list[str] = field(default_factory=list)

    @classmethod
    def from_args(cls, args: Mapping[str, str], per_page: int = 48) -> Filters:
        """Parse request args; a bad value is dropped and reported, never a 500."""
        f = cls(per_page=per_page)
        f.label = args.get("label", "").strip()[:80]
        f.truth = args.get("truth", "").strip()[:80]
        f.source = args.get("source", "").strip()[:80]
        f.q = args.get("q", "").strip()[:200]
        f.anomalies = args.get("anomalies", "") in ("1", "true", "on", "yes")
        for name in ("date_from", "date_to"):
            value = args.get(name, "").strip()
            if value:
                try:
                    setattr(f, name, date.fromisoformat(value).isoformat())
                except ValueError:
                    f.errors.append(f"{name}={value[:20]!r} is not a date (YYYY-MM-DD); ignored")
        for name in ("conf_min", "conf_max"):
            value = args.get(name, "").strip()
            if value:
                try:
                    number = float(value)
                    if not 0.0 <= number <= 1.0:
                        raise ValueError
                    setattr(f, name, number)
                except ValueError:
                    f.errors.append(f"{name}={value[:20]!r} is not a number in [0, 1]; ignored")
        sort = args.get("sort", "date")
        f.sort = sort if sort in SORTS else "date"
        f.order = "asc" if args.get("order") == "asc" else "desc"
        f.page = _int(args.get("page"), 1, 1, 1_000_000)
        f.per_page = _int(args.get("per_page"), per_page, 1, MAX_PAGE_SIZE)
        return f

    def query_args(self, **changes: Any) -> dict[str, Any]:
        """The non-default filters as query-string items (for paging and sort links)."""
        out: dict[str, Any] = {}
        for key in ("label", "truth", "source", "date_from", "date_to", "q", "sort", "order"):
            value = changes.get(key, getattr(self, key))
            if value:
                out[key] = value
        for key in ("conf_min", "conf_max"):
            value = changes.get(key, getattr(self, key))
            if value is not None:
                out[key] = value
        if changes.get("anomalies", self.anomalies):
            out["anomalies"] = 1
        page = changes.get("page", self.page)
        if page != 1:
            out["page"] = page
        return out


def _int(value: str | None, default: int, lo: int, hi: int) -> int:
    try:
        return min(hi, max(lo, int(str(value))))
    except (TypeError, ValueError):
        return default


def _truth_sql(s: Schema) -> str:
    """The catalog label of ``p``: newest human correction, else the weak labeller's primary."""
    return (
        f"COALESCE((SELECT c.label FROM {s.corrections} c WHERE c.picture_id = p.id "
        f"ORDER BY c.created_at DESC, c.id DESC LIMIT 1), json_extract(p.labels, '$.primary'))"
    )


def _where(f: Filters, s: Schema) -> tuple[str, dict[str, Any]]:
    clauses = ["p.sha256 IS NOT NULL"]  # pictures with a stored file
    params: dict[str, Any] = {}
    if f.label:
        clauses.append("pr.label = :label")
        params["label"] = f.label
    if f.truth:
        clauses.append(f"{_truth_sql(s)} = :truth")
        params["truth"] = f.truth
    if f.source:
        clauses.append("p.source = :source")
        params["source"] = f.source
    if f.date_from:
        clauses.append("p.date >= :date_from")
        params["date_from"] = f.date_from
    if f.date_to:
        clauses.append("p.date <= :date_to")
        params["date_to"] = f.date_to
    if f.anomalies:
        clauses.append("pr.is_anomaly = 1")
    if f.conf_min is not None:
        clauses.append("pr.confidence >= :conf_min")
        params["conf_min"] = f.conf_min
    if f.conf_max is not None:
        clauses.append("pr.confidence <= :conf_max")
        params["conf_max"] = f.conf_max
    if f.q:
        # LIKE with escaped wildcards: the user's % and _ are literal characters
        escaped = f.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        clauses.append("(p.title LIKE :q ESCAPE '\\' OR p.explanation LIKE :q ESCAPE '\\')")
        params["q"] = f"%{escaped}%"
    return " AND ".join(clauses), params


def _columns(s: Schema) -> str:
    return (
        "p.id, p.source, p.date, p.title, p.sha256, p.path, p.media_type, p.width, p.height, "
        "json_extract(p.labels, '$.primary') AS weak_label, "
        f"{_truth_sql(s)} AS truth, "
        "pr.label AS pred_label, pr.confidence, pr.anomaly_score, pr.is_anomaly"
    )


def _join(s: Schema) -> str:
    return f"{s.pictures} p LEFT JOIN {s.predictions} pr ON pr.sha256 = p.sha256 AND pr.run_id = :run_id"


def _needs_predictions(f: Filters) -> bool:
    return bool(f.label or f.anomalies or f.conf_min is not None or f.conf_max is not None)


def list_pictures(
    conn: sqlite3.Connection, f: Filters, run_id: str | None, s: Schema = SCHEMA
) -> tuple[list[dict[str, Any]], int]:
    """One page of pictures (with the run's prediction) and the total matching count.

    Two steps keep a page cheap at any catalog size: the ids of the page come from a narrow
    query (only sort keys go through the sorter), then only those rows are read in full.
    The count skips the predictions join when no filter needs it (an index-only scan).
    """
    where, params = _where(f, s)
    params["run_id"] = run_id
    direction = "ASC" if f.order == "asc" else "DESC"
    order = SORTS[f.sort].format(dir=direction)
    source = _join(s) if _needs_predictions(f) else f"{s.pictures} p"
    total = conn.execute(f"SELECT COUNT(*) FROM {source} WHERE {where}", params).fetchone()[0]
    params.update(limit=f.per_page, offset=(f.page - 1) * f.per_page)
    ids = [
        r[0]
        for r in conn.execute(
            f"SELECT p.id FROM {_join(s)} WHERE {where} ORDER BY {order} LIMIT :limit OFFSET :offset",
            params,
        )
    ]
    return rows_by_id(conn, ids, run_id, s), int(total)


def rows_by_id(
    conn: sqlite3.Connection, ids: list[int], run_id: str | None, s: Schema = SCHEMA
) -> list[dict[str, Any]]:
    """The list columns of the pictures ``ids`` (with the run's prediction), in that order:
    the second step of :func:`list_pictures`, and how a page shows a list ranked elsewhere
    (the Anomalies page's ranking by a person's marks)."""
    if not ids:
        return []
    marks = ",".join("?" * len(ids))
    rows = {
        r["id"]: dict(r)
        for r in conn.execute(
            f"SELECT {_columns(s)} FROM {_join(s).replace(':run_id', '?')} WHERE p.id IN ({marks})",
            [run_id, *ids],
        )
    }
    return [rows[i] for i in ids if i in rows]


def get_picture(
    conn: sqlite3.Connection, picture_id: int, run_id: str | None, s: Schema = SCHEMA
) -> dict[str, Any] | None:
    """Every catalog field of one picture, its run prediction (probs parsed) and corrections."""
    row = conn.execute(
        f"SELECT p.*, {_truth_sql(s)} AS truth, pr.label AS pred_label, pr.confidence, pr.probs, "
        f"pr.anomaly_score, pr.is_anomaly FROM {_join(s)} WHERE p.id = :id",
        {"id": int(picture_id), "run_id": run_id},
    ).fetchone()
    if row is None:
        return None
    out = dict(row)
    out["labels"] = _json(out.get("labels")) or {}
    out["probs"] = _json(out.get("probs"))
    out["corrections"] = [
        dict(r)
        for r in conn.execute(
            f"SELECT label, who, created_at FROM {s.corrections} WHERE picture_id = ? ORDER BY created_at DESC, id DESC",
            (int(picture_id),),
        )
    ]
    return out


def find_by_ref(
    conn: sqlite3.Connection, refs: list[str], s: Schema = SCHEMA
) -> dict[str, dict[str, Any]]:
    """Resolve neighbour ids (catalog id, sha256, date or store path) to pictures."""
    found: dict[str, dict[str, Any]] = {}
    for ref in dict.fromkeys(refs):
        ref_s = str(ref)
        row = None
        if ref_s.isdigit():
            row = conn.execute(
                f"SELECT id, title, sha256 FROM {s.pictures} WHERE id = ?", (int(ref_s),)
            ).fetchone()
        if row is None and len(ref_s) == 64:
            row = conn.execute(
                f"SELECT id, title, sha256 FROM {s.pictures} WHERE sha256 = ? LIMIT 1", (ref_s,)
            ).fetchone()
        if row is None:
            row = conn.execute(
                f"SELECT id, title, sha256 FROM {s.pictures} WHERE path = ? OR date = ? LIMIT 1",
                (ref_s, ref_s),
            ).fetchone()
        if row is not None:
            found[ref_s] = dict(row)
    return found


def distinct(conn: sqlite3.Connection, column: str, s: Schema = SCHEMA) -> list[str]:
    """Values offered in a filter's drop-down (``source``)."""
    if column not in ("source",):
        raise ValueError(f"no drop-down for {column!r}")
    return [
        r[0]
        for r in conn.execute(
            f"SELECT DISTINCT {column} FROM {s.pictures} WHERE {column} IS NOT NULL ORDER BY 1"
        )
    ]


def label_values(
    conn: sqlite3.Connection, run_id: str | None, s: Schema = SCHEMA
) -> tuple[list[str], list[str]]:
    """(predicted labels of the run, catalog labels) for the filter drop-downs."""
    predicted = [
        r[0]
        for r in conn.execute(
            f"SELECT DISTINCT label FROM {s.predictions} WHERE run_id = ? AND label IS NOT NULL ORDER BY 1",
            (run_id,),
        )
    ]
    weak = {
        r[0]
        for r in conn.execute(
            f"SELECT DISTINCT json_extract(labels, '$.primary') FROM {s.pictures} WHERE labels IS NOT NULL"
        )
    }
    weak |= {r[0] for r in conn.execute(f"SELECT DISTINCT label FROM {s.corrections}")}
    return predicted, sorted(v for v in weak if v)


def run_ids(conn: sqlite3.Connection, s: Schema = SCHEMA) -> list[str]:
    """Runs with predictions in the catalog, newest first (by their latest row)."""
    try:
        rows = conn.execute(
            f"SELECT run_id, MAX(rowid) AS last FROM {s.predictions} GROUP BY run_id ORDER BY last DESC"
        )
        return [r[0] for r in rows]
    except sqlite3.OperationalError:  # no predictions table yet
        return []


def _json(value: Any) -> Any:
    if value is None or isinstance(value, dict | list):
        return value
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return None
