"""The gallery's list: the catalog's pictures filtered, searched, sorted and paged with one
run's predictions, fast with 100,000 rows (one indexed query for a page's ids, then its
rows by key; one count, kept until the catalog changes).

:class:`~astro_exp.data.catalog.gallery_filters.Filters` is what a list asks for (the web
app's query string, parsed and clamped); :func:`list_pictures` answers it. Every statement
is a SELECT whose plan reads an index (``tests/test_catalog_scale.py`` fails on a full
scan), so it runs on the web app's read-only connection while a scraper writes.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from astro_exp.data.catalog.gallery_filters import PRED_SORTS, SORTS, Filters, where_sql
from astro_exp.data.catalog.lookups import data_version, rows_by_id, with_prediction
from astro_exp.data.catalog.schema import PICTURES, PREDICTIONS

# a filter's total is counted up to here, then shown as "20,000+": a count reads every
# matching row, so an exact one would grow with the catalog; a page never needs more
COUNT_CAP = 20_000


def _pred_first() -> str:
    """Predictions of the run first (their indexes give the order), each with its pictures."""
    return f"{PREDICTIONS} pr CROSS JOIN {PICTURES} p ON p.sha256 = pr.sha256"


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

    def get(self, conn: sqlite3.Connection, key: tuple, compute: Callable[[], Any]) -> int:
        """The count of ``key`` at the catalog's current version (``compute`` it if not kept)."""
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


@dataclass
class _Page:
    """One page's statement parts: the WHERE (with the keyset's bound) and its parameters,
    the row window, and the order as read (a Previous link's keyset reads it backwards)."""

    where: str
    params: dict[str, Any]
    limit: int
    offset: int
    desc: bool  # the sort's own direction
    keyed: bool = False  # bounded by a keyset (then offset is 0)
    reverse: bool = False

    @property
    def direction(self) -> str:
        """The ORDER BY direction as read (a reversed page flips the sort's)."""
        return "DESC" if self.desc != self.reverse else "ASC"


def _count(
    conn: sqlite3.Connection, sql: str, params: dict[str, Any], counts: CountCache | None
) -> int:
    """A ``SELECT COUNT(*)``'s answer, kept in ``counts`` (when given) until the catalog changes."""
    run = lambda: conn.execute(sql, params).fetchone()[0]  # noqa: E731
    if counts is None:
        return int(run())
    return counts.get(conn, (sql, tuple(sorted(params.items()))), run)


def _label_given(conn: sqlite3.Connection, f: Filters, run_id: str | None) -> bool:
    """Whether the run gave the label filtered on (one it never gave matches nothing)."""
    return not f.label or (
        conn.execute(
            f"SELECT 1 FROM {PREDICTIONS} WHERE run_id = ? AND label = ? LIMIT 1",
            (run_id, f.label),
        ).fetchone()
        is not None
    )


def _capped_total(
    conn: sqlite3.Connection,
    f: Filters,
    where: str,
    params: dict[str, Any],
    counts: CountCache | None,
) -> int:
    """The matching pictures counted up to :data:`COUNT_CAP` (``f.more`` says when there
    are more); the predictions are joined only when a filter needs them."""
    source = with_prediction() if f.needs_predictions else f"{PICTURES} p"
    capped = f"SELECT COUNT(*) FROM (SELECT 1 FROM {source} WHERE {where} LIMIT {COUNT_CAP + 1})"
    total = _count(conn, capped, params, counts)
    f.more = total > COUNT_CAP
    return min(total, COUNT_CAP)


def _keyset(
    conn: sqlite3.Connection, f: Filters, run_id: str | None
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
            f"SELECT {key} FROM {PICTURES} p JOIN {PREDICTIONS} pr ON pr.sha256 = p.sha256 "
            "AND pr.run_id = ? WHERE p.id = ?",
            (run_id, cursor),
        ).fetchone()
        tie_desc = True
    else:
        key = "p.date" if f.sort == "date" else "p.title COLLATE NOCASE"
        column = "date" if f.sort == "date" else "title"
        row = conn.execute(f"SELECT {column} FROM {PICTURES} WHERE id = ?", (cursor,)).fetchone()
        tie_desc = desc
    if row is None or row[0] is None:
        return None
    if reverse:
        desc, tie_desc = not desc, not tie_desc
    op, tie_op = ("<" if desc else ">"), ("<" if tie_desc else ">")
    where = f"{key} {op}= :k_key AND ({key} {op} :k_key OR p.id {tie_op} :k_id)"
    return where, {"k_key": row[0], "k_id": cursor}, reverse


def _page(
    conn: sqlite3.Connection, f: Filters, run_id: str | None, where: str, params: dict[str, Any]
) -> _Page:
    """The page's window: after/before a picture by its sort key when the link carries
    one (no OFFSET to skip), else the page number's OFFSET."""
    page = _Page(where, params, f.per_page, (f.page - 1) * f.per_page, f.order != "asc")
    keyset = _keyset(conn, f, run_id)
    if keyset is not None:
        extra, kparams, page.reverse = keyset
        page.where, page.params, page.offset = f"{where} AND {extra}", {**params, **kparams}, 0
        page.keyed = True
    return page


def _scored_ids(
    conn: sqlite3.Connection,
    f: Filters,
    page: _Page,
    total: int,
    counts: CountCache | None,
) -> list[int]:
    """A page sorted by the run's score: its scored pictures by the index of that score,
    then (NULLs last, newest id first) the pictures without one."""
    column = PRED_SORTS[f.sort]
    tie = "ASC" if page.reverse else "DESC"
    scored = f"{page.where} AND pr.run_id = :run_id AND {column} IS NOT NULL"
    limit, offset = page.limit, page.offset
    ids: list[int] = []
    n_scored = (
        _count(conn, f"SELECT COUNT(*) FROM {_pred_first()} WHERE {scored}", page.params, counts)
        if not page.keyed and not f.more  # (past the cap, NULLs are beyond any page)
        else total + (offset + limit if f.more else 0)
    )
    if offset < n_scored:
        ids = [
            r[0]
            for r in conn.execute(
                f"SELECT p.id FROM {_pred_first()} WHERE {scored} "
                f"ORDER BY {column} {page.direction}, p.id {tie} LIMIT :limit OFFSET :offset",
                {**page.params, "limit": limit, "offset": offset},
            )
        ]
    if len(ids) < limit and not page.keyed and not f.more and total > n_scored:
        rest_offset = max(0, offset - n_scored)
        ids += [
            r[0]
            for r in conn.execute(
                f"SELECT p.id FROM {with_prediction()} WHERE {page.where} AND {column} IS NULL "
                "ORDER BY p.id DESC LIMIT :limit OFFSET :offset",
                {**page.params, "limit": limit - len(ids), "offset": rest_offset},
            )
        ]
    return ids


def _ordered_ids(conn: sqlite3.Connection, f: Filters, page: _Page) -> list[int]:
    """A page sorted by the pictures' own columns (or, with no run, a score sort: every
    score is NULL, so the newest id first)."""
    if f.needs_predictions:
        # a page in the pictures' order walks their index, each row's prediction by its key
        # (CROSS JOIN keeps SQLite from scanning the predictions first)
        source = f"{PICTURES} p CROSS JOIN {PREDICTIONS} pr ON pr.sha256 = p.sha256 AND pr.run_id = :run_id"
    else:
        source = f"{PICTURES} p"
    order = SORTS[f.sort].format(dir=page.direction) if f.sort not in PRED_SORTS else "p.id DESC"
    return [
        r[0]
        for r in conn.execute(
            f"SELECT p.id FROM {source} WHERE {page.where} ORDER BY {order} "
            "LIMIT :limit OFFSET :offset",
            {**page.params, "limit": page.limit, "offset": page.offset},
        )
    ]


def list_pictures(
    conn: sqlite3.Connection,
    f: Filters,
    run_id: str | None,
    counts: CountCache | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """One page of pictures (with the run's prediction) and the total matching count.

    Every page is one indexed query for its ids (only the sort keys go through the sorter,
    and a sort by the run's confidence or anomaly score walks that index of the run's
    predictions), then only those rows are read in full. The Next and Previous links carry
    the picture the page ends on (``after``/``before``: keyset paging, no OFFSET to skip);
    a page number alone is an OFFSET. The count skips the predictions join when no filter
    needs it and is kept in ``counts`` until the catalog changes.

    Args:
        conn: a connection to the catalog (read-only will do).
        f: what to list; ``f.more`` is set when the total reached :data:`COUNT_CAP`.
        run_id: whose predictions are filtered, sorted and shown (None: none).
        counts: where totals are kept between requests (None: counted each time).

    Returns:
        (the page's rows, as :func:`~astro_exp.data.catalog.lookups.rows_by_id` gives
        them; the matching total, at most :data:`COUNT_CAP`).
    """
    where, params = where_sql(f)
    params["run_id"] = run_id
    if not _label_given(conn, f, run_id):
        return [], 0
    total = _capped_total(conn, f, where, params, counts)
    if total == 0:
        return [], 0
    page = _page(conn, f, run_id, where, params)
    if f.sort in PRED_SORTS and run_id is not None:
        ids = _scored_ids(conn, f, page, total, counts)
    else:
        ids = _ordered_ids(conn, f, page)
    if page.reverse:
        ids.reverse()
    return rows_by_id(conn, ids, run_id), int(total)


class Gallery:
    """The gallery's list (a part of :class:`~astro_exp.data.catalog.Catalog` and of the
    read-only :class:`~astro_exp.data.catalog.CatalogReader`)."""

    conn: sqlite3.Connection

    def list_pictures(
        self, f: Filters, run_id: str | None, counts: CountCache | None = None
    ) -> tuple[list[dict[str, Any]], int]:
        """:func:`list_pictures` on this catalog."""
        return list_pictures(self.conn, f, run_id, counts)
