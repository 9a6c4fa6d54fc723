"""Read-side SQL over the catalog for the pages: filtered, sorted, paged picture lists that
stay fast with tens of thousands of rows (one indexed query for a page, one for the count).

The catalog module (:mod:`astro_exp.data.catalog`) owns the schema and every write; the
table names come from it (:class:`Schema`). Every query here is a SELECT on the read-only
connection it provides (:func:`~astro_exp.data.catalog.connect_read_only`), one per request: a page can never change the
catalog, and SQLite's WAL lets a scraper write at the same time.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from astro_exp.data.catalog import CORRECTIONS, PICTURES, PREDICTIONS, SEARCH, WEAK_SQL

SORTS = {
    # name -> ORDER BY of the pictures' own columns (id breaks ties so paging is stable;
    # both walk a partial index of the stored pictures)
    "date": "p.date {dir}, p.id {dir}",
    "title": "p.title COLLATE NOCASE {dir}, p.id {dir}",
    # the run's scores: walked on the run's index of that score, NULLs (and pictures
    # without a prediction) last, newest id first among ties (see list_pictures)
    "confidence": "",
    "anomaly": "",
}
PRED_SORTS = {"confidence": "pr.confidence", "anomaly": "pr.anomaly_score"}
MAX_PAGE_SIZE = 200
# a filter's total is counted up to here, then shown as "20,000+": a count reads every
# matching row, so an exact one would grow with the catalog; a page never needs more
COUNT_CAP = 20_000


@dataclass(frozen=True)
class Schema:
    """Table names of the catalog (``astro_exp.data.catalog``)."""

    pictures: str = PICTURES
    corrections: str = CORRECTIONS
    predictions: str = PREDICTIONS
    search: str = SEARCH


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
    after: int | None = None  # keyset: the page after this picture (the Next link)
    before: int | None = None  # keyset: the page before this picture (the Previous link)
    more: bool = False  # set by list_pictures: the total is COUNT_CAP and there are more
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
        for name in ("after", "before"):
            value = _int(args.get(name), 0, 0, 2**62)
            setattr(f, name, value or None)
        return f


def _int(value: str | None, default: int, lo: int, hi: int) -> int:
    try:
        return min(hi, max(lo, int(str(value))))
    except (TypeError, ValueError):
        return default


def _truth_sql(s: Schema) -> str:
    """The catalog label of ``p``: newest human correction, else the weak labeller's primary."""
    return (
        f"COALESCE((SELECT c.label FROM {s.corrections} c WHERE c.picture_id = p.id "
        f"ORDER BY c.created_at DESC, c.id DESC LIMIT 1), {WEAK_SQL})"
    )


def _truth_filter(s: Schema) -> str:
    """``truth = :truth`` as two indexed halves (the correlated COALESCE of
    :func:`_truth_sql` reads every row): the pictures whose newest correction says it, and
    the uncorrected pictures whose weak label (the indexed expression) says it."""
    newest = (
        f"SELECT c.picture_id FROM {s.corrections} c WHERE c.label = :truth AND c.id = "
        f"(SELECT c2.id FROM {s.corrections} c2 WHERE c2.picture_id = c.picture_id "
        "ORDER BY c2.created_at DESC, c2.id DESC LIMIT 1)"
    )
    return (
        f"(p.id IN ({newest}) OR ({WEAK_SQL} = :truth AND NOT EXISTS "
        f"(SELECT 1 FROM {s.corrections} c3 WHERE c3.picture_id = p.id)))"
    )


def fts_query(text: str) -> str:
    """The search box's words as an FTS5 query: every word must appear (a prefix of the
    last one too, as you type); quotes and operators a person types are taken literally."""
    words = [w for w in re.findall(r"\w+", text.lower()) if w]
    if not words:
        return ""
    quoted = [f'"{w}"' for w in words[:12]]
    quoted[-1] += "*"
    return " ".join(quoted)


def _where(f: Filters, s: Schema) -> tuple[str, dict[str, Any]]:
    clauses = ["p.sha256 IS NOT NULL"]  # pictures with a stored file
    params: dict[str, Any] = {}
    # a label or confidence range holds a large share of the pictures: a page sorted by the
    # pictures' own columns walks that index and checks each row's prediction (the unary
    # ``+`` keeps the planner off the predictions' index: from it, every match is sorted)
    if f.label:
        clauses.append("+pr.label = :label")
        params["label"] = f.label
    if f.truth:
        clauses.append(_truth_filter(s))
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
        clauses.append("+pr.confidence >= :conf_min")
        params["conf_min"] = f.conf_min
    if f.conf_max is not None:
        clauses.append("+pr.confidence <= :conf_max")
        params["conf_max"] = f.conf_max
    if f.q:
        match = fts_query(f.q)
        if match:  # the FTS5 index of titles and explanations (words, stems, prefixes)
            clauses.append(f"p.id IN (SELECT rowid FROM {s.search} WHERE {s.search} MATCH :q)")
            params["q"] = match
        else:  # only punctuation: nothing can match a word search
            clauses.append("0")
    return " AND ".join(clauses), params


def _columns(s: Schema) -> str:
    return (
        "p.id, p.source, p.date, p.title, p.sha256, p.path, p.media_type, p.width, p.height, "
        f"{WEAK_SQL} AS weak_label, "
        f"{_truth_sql(s)} AS truth, "
        "pr.label AS pred_label, pr.confidence, pr.anomaly_score, pr.is_anomaly, "
        "pr.picture_label, pr.picture_confidence, pr.text_probs IS NOT NULL AS has_text, "
        "pr.evidence"
    )


def _join(s: Schema) -> str:
    return f"{s.pictures} p LEFT JOIN {s.predictions} pr ON pr.sha256 = p.sha256 AND pr.run_id = :run_id"


def _pred_first(s: Schema) -> str:
    """Predictions of the run first (their indexes give the order), each with its pictures."""
    return f"{s.predictions} pr CROSS JOIN {s.pictures} p ON p.sha256 = pr.sha256"


def _needs_predictions(f: Filters) -> bool:
    return bool(f.label or f.anomalies or f.conf_min is not None or f.conf_max is not None)


class CountCache:
    """Total counts of the gallery's filters, kept until the catalog changes (or for
    ``ttl_s``): a count reads every matching row, a page only the rows it shows, so with
    100,000 rows the count is what grows. The catalog's version is three index lookups
    (the newest picture, prediction and correction), read on every request."""

    def __init__(self, ttl_s: float = 60.0, max_items: int = 512) -> None:
        self.ttl_s, self.max_items = ttl_s, max_items
        self._items: dict[tuple, tuple[float, int]] = {}
        self._flights: dict[tuple, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, conn: sqlite3.Connection, key: tuple, compute: Any) -> int:
        key = (*key, data_version(conn))
        now = time.monotonic()
        with self._lock:
            hit = self._items.get(key)
            if hit is not None and now - hit[0] < self.ttl_s:
                return hit[1]
        with self._lock:
            flight = self._flights.setdefault(key[:-1], threading.Lock())
        with flight:  # one request counts; the others asking the same wait for its answer
            with self._lock:
                hit = self._items.get(key)
            if hit is not None and now - hit[0] < self.ttl_s:
                return hit[1]
            value = int(compute())
            with self._lock:
                if len(self._items) >= self.max_items:
                    self._items.clear()
                    self._flights.clear()
                self._items[key] = (now, value)
        return value


def data_version(conn: sqlite3.Connection, s: Schema | None = None) -> tuple:
    """What changes when pictures, predictions or corrections are added (three index
    lookups, never a scan): the key that cached counts and rankings are kept under."""
    s = s or SCHEMA
    row = conn.execute(
        f"SELECT (SELECT MAX(id) FROM {s.pictures}), (SELECT MAX(rowid) FROM {s.predictions}), "
        f"(SELECT MAX(id) FROM {s.corrections})"
    ).fetchone()
    return tuple(row)


def _keyset(
    conn: sqlite3.Connection, f: Filters, run_id: str | None, s: Schema
) -> tuple[str, dict[str, Any], bool] | None:
    """The page next to a picture by its sort key (``after``/``before``: the last/first
    picture of the page shown), so the 2,000th page costs what the first does; None when
    there is no cursor or its key is unknown (then the page number's OFFSET is used).
    Returns (the extra WHERE, its parameters, whether the order is reversed)."""
    cursor, reverse = (f.after, False) if f.after else (f.before, True) if f.before else (0, False)
    if not cursor:
        return None
    desc = f.order != "asc"
    if f.sort in PRED_SORTS:
        if run_id is None:
            return None
        key = PRED_SORTS[f.sort]
        row = conn.execute(
            f"SELECT {key} FROM {s.pictures} p JOIN {s.predictions} pr ON pr.sha256 = p.sha256 "
            "AND pr.run_id = ? WHERE p.id = ?",
            (run_id, cursor),
        ).fetchone()
        tie_desc = True
    else:
        key = "p.date" if f.sort == "date" else "p.title COLLATE NOCASE"
        column = "date" if f.sort == "date" else "title"
        row = conn.execute(f"SELECT {column} FROM {s.pictures} WHERE id = ?", (cursor,)).fetchone()
        tie_desc = desc
    if row is None or row[0] is None:
        return None
    if reverse:
        desc, tie_desc = not desc, not tie_desc
    op, tie_op = ("<" if desc else ">"), ("<" if tie_desc else ">")
    where = f"{key} {op}= :k_key AND ({key} {op} :k_key OR p.id {tie_op} :k_id)"
    return where, {"k_key": row[0], "k_id": cursor}, reverse


def list_pictures(
    conn: sqlite3.Connection,
    f: Filters,
    run_id: str | None,
    s: Schema = SCHEMA,
    counts: CountCache | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """One page of pictures (with the run's prediction) and the total matching count.

    Every page is one indexed query for its ids (only the sort keys go through the sorter,
    and a sort by the run's confidence or anomaly score walks that index of the run's
    predictions), then only those rows are read in full. The Next and Previous links carry
    the picture the page ends on (``after``/``before``: keyset paging, no OFFSET to skip);
    a page number alone is an OFFSET. The count skips the predictions join when no filter
    needs it and is kept in ``counts`` until the catalog changes.
    """
    where, params = _where(f, s)
    params["run_id"] = run_id
    if (
        f.label
        and not conn.execute(  # a label the run never gave matches nothing: say so now
            f"SELECT 1 FROM {s.predictions} WHERE run_id = ? AND label = ? LIMIT 1",
            (run_id, f.label),
        ).fetchone()
    ):
        return [], 0
    limit, offset = f.per_page, (f.page - 1) * f.per_page

    def count(sql: str) -> int:
        run = lambda: conn.execute(sql, params).fetchone()[0]  # noqa: E731
        if counts is None:
            return int(run())
        return counts.get(conn, (sql, tuple(sorted(params.items()))), run)

    source = _join(s) if _needs_predictions(f) else f"{s.pictures} p"
    capped = f"SELECT COUNT(*) FROM (SELECT 1 FROM {source} WHERE {where} LIMIT {COUNT_CAP + 1})"
    total = count(capped)
    f.more = total > COUNT_CAP
    total = min(total, COUNT_CAP)
    if _needs_predictions(f):
        # a page in the pictures' order walks their index, each row's prediction by its key
        # (CROSS JOIN keeps SQLite from scanning the predictions first)
        source = f"{s.pictures} p CROSS JOIN {s.predictions} pr ON pr.sha256 = p.sha256 AND pr.run_id = :run_id"
    if total == 0:
        return [], 0
    keyset = _keyset(conn, f, run_id, s)
    reverse = False
    if keyset is not None:
        extra, kparams, reverse = keyset
        where, params, offset = f"{where} AND {extra}", {**params, **kparams}, 0
    desc = f.order != "asc"
    if reverse:
        desc = not desc
    direction = "DESC" if desc else "ASC"
    if f.sort in PRED_SORTS and run_id is not None:
        # the run's scored pictures by the index of that score, then (NULLs last) the rest
        column = PRED_SORTS[f.sort]
        tie = "ASC" if reverse else "DESC"
        scored = f"{where} AND pr.run_id = :run_id AND {column} IS NOT NULL"
        ids: list[int] = []
        n_scored = (
            count(f"SELECT COUNT(*) FROM {_pred_first(s)} WHERE {scored}")
            if keyset is None and not f.more  # (past the cap, NULLs are beyond any page)
            else total + (offset + limit if f.more else 0)
        )
        if offset < n_scored:
            ids = [
                r[0]
                for r in conn.execute(
                    f"SELECT p.id FROM {_pred_first(s)} WHERE {scored} "
                    f"ORDER BY {column} {direction}, p.id {tie} LIMIT :limit OFFSET :offset",
                    {**params, "limit": limit, "offset": offset},
                )
            ]
        if len(ids) < limit and keyset is None and not f.more and total > n_scored:
            rest_offset = max(0, offset - n_scored)
            ids += [
                r[0]
                for r in conn.execute(
                    f"SELECT p.id FROM {_join(s)} WHERE {where} AND {column} IS NULL "
                    "ORDER BY p.id DESC LIMIT :limit OFFSET :offset",
                    {**params, "limit": limit - len(ids), "offset": rest_offset},
                )
            ]
    else:
        # (no run: every score is NULL, so the score sorts are the newest id first)
        order = SORTS[f.sort].format(dir=direction) if f.sort not in PRED_SORTS else "p.id DESC"
        ids = [
            r[0]
            for r in conn.execute(
                f"SELECT p.id FROM {source} WHERE {where} ORDER BY {order} "
                "LIMIT :limit OFFSET :offset",
                {**params, "limit": limit, "offset": offset},
            )
        ]
    if reverse:
        ids.reverse()
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
        "pr.anomaly_score, pr.is_anomaly, pr.picture_label, pr.picture_confidence, "
        f"pr.picture_probs, pr.text_probs, pr.evidence FROM {_join(s)} WHERE p.id = :id",
        {"id": int(picture_id), "run_id": run_id},
    ).fetchone()
    if row is None:
        return None
    out = dict(row)
    out["labels"] = _json(out.get("labels")) or {}
    out["probs"] = _json(out.get("probs"))
    out["picture_probs"] = _json(out.get("picture_probs"))
    out["text_probs"] = _json(out.get("text_probs"))
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
