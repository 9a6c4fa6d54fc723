"""The pictures table: a row per day of a source (the scraper's :class:`PictureRecord`),
its weak labels, and the counts ``dataset stats`` prints."""

from __future__ import annotations

import json
import re
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from astro_exp.data.catalog.schema import CORRECTIONS, DONE_STATUSES, PICTURES

_URL_RE = re.compile(r"\bhttps?://\S+?(?=:\s|[\s;,]|$)")


@dataclass
class PictureRecord:
    """One catalog row as the scraper writes it (``id`` is assigned by the catalog)."""

    source: str
    date: str  # ISO date: with source, the unique key
    status: str
    page_url: str | None = None
    image_url: str | None = None
    hd_url: str | None = None
    thumbnail_url: str | None = None
    title: str | None = None
    explanation: str | None = None
    credit: str | None = None
    copyright: str | None = None
    media_type: str | None = None
    sha256: str | None = None
    path: str | None = None
    width: int | None = None
    height: int | None = None
    bytes: int | None = None
    fetched_at: str | None = None
    error: str | None = None
    labels: dict | None = None


_RECORD_FIELDS = [f.name for f in fields(PictureRecord)]


class Pictures:
    """The catalog's picture rows (a part of :class:`~astro_exp.data.catalog.Catalog`)."""

    conn: sqlite3.Connection
    path: Path
    transaction: Callable[[], AbstractContextManager[sqlite3.Connection]]

    def upsert(self, record: PictureRecord) -> int:
        """Insert or replace the row of ``(source, date)``; returns its id (stable across updates).

        Every field is written (a failed re-fetch clears an old path), except ``labels``
        which is kept when the record has none.
        """
        with self.transaction():  # (no RETURNING: SQLite before 3.35 lacks it)
            self.conn.execute(_UPSERT, _values(record))
            row = self.conn.execute(
                f"SELECT id FROM {PICTURES} WHERE source = ? AND date = ?",
                (record.source, record.date),
            ).fetchone()
        return int(row[0])

    def upsert_many(self, records: Iterable[PictureRecord]) -> int:
        """:meth:`upsert` of many rows in one transaction, without reading their ids back
        (demo and benchmark catalogs of tens of thousands of rows); returns how many."""
        data = [_values(r) for r in records]
        with self.transaction():
            self.conn.executemany(_UPSERT, data)
        return len(data)

    def get(self, source: str, date: str) -> dict[str, Any] | None:
        """The row of one day of one source, labels parsed; None when absent."""
        row = self.conn.execute(
            f"SELECT * FROM {PICTURES} WHERE source = ? AND date = ?", (source, date)
        ).fetchone()
        return _row(row) if row is not None else None

    def get_by_id(self, picture_id: int) -> dict[str, Any] | None:
        row = self.conn.execute(
            f"SELECT * FROM {PICTURES} WHERE id = ?", (int(picture_id),)
        ).fetchone()
        return _row(row) if row is not None else None

    def statuses(
        self, source: str, dates: Iterable[str] | None = None
    ) -> dict[str, tuple[str, str | None]]:
        """{date: (status, path)} of a source's rows (all, or only ``dates``)."""
        rows = self.conn.execute(
            f"SELECT date, status, path FROM {PICTURES} WHERE source = ?", (source,)
        )
        wanted = set(dates) if dates is not None else None
        return {r[0]: (r[1], r[2]) for r in rows if wanted is None or r[0] in wanted}

    def rows(
        self,
        sources: Iterable[str] | None = None,
        status: str | None = None,
        media_type: str | None = None,
    ) -> list[dict[str, Any]]:
        """Rows (labels parsed), oldest day first, filtered by source, status and media type."""
        sql, params = select_where(
            PICTURES,
            {
                "source": None if sources is None else list(sources),
                "status": status,
                "media_type": media_type,
            },
            order_by="date, source",
        )
        return [_row(r) for r in self.conn.execute(sql, params)]

    def set_labels(self, updates: Mapping[int, dict]) -> int:
        """Write weak labels ``{picture id: labels dict}`` in one transaction; returns rows changed."""
        with self.transaction():
            cur = self.conn.executemany(
                f"UPDATE {PICTURES} SET labels = ? WHERE id = ?",
                [(json.dumps(lab, sort_keys=True), int(pid)) for pid, lab in updates.items()],
            )
        return cur.rowcount

    def referenced_paths(self) -> set[str]:
        """Store paths some row points at (the orphan sweep keeps exactly these)."""
        return {
            r[0]
            for r in self.conn.execute(
                f"SELECT DISTINCT path FROM {PICTURES} WHERE path IS NOT NULL"
            )
        }

    def newest_day(self, source: str) -> str | None:
        """The newest day of ``source`` the catalog holds done (fetched, or a video/no-image
        day): where a watcher carries on after an import. One index lookup."""
        row = self.conn.execute(
            f"SELECT MAX(date) FROM {PICTURES} WHERE source = ? AND status IN "
            f"({','.join('?' * len(DONE_STATUSES))})",
            (source, *DONE_STATUSES),
        ).fetchone()
        return row[0] if row and row[0] else None

    def count(self) -> int:
        return int(self.conn.execute(f"SELECT COUNT(*) FROM {PICTURES}").fetchone()[0])

    def stats(self, sources: Iterable[str] | None = None) -> dict[str, list[tuple[Any, ...]]]:
        """Count tables for ``scripts/dataset.py stats``: per source, status, media type, year,
        label (a person's correction over the weak label) and failure reason."""
        where, params = "", []
        if sources is not None:
            srcs = list(sources)
            where, params = f"WHERE p.source IN ({','.join('?' * len(srcs))})", srcs

        def q(select: str, group: str, extra: str = "") -> list[tuple[Any, ...]]:
            cond = f"{where} {('AND ' if where else 'WHERE ') + extra if extra else ''}"
            sql = f"SELECT {select}, COUNT(*) FROM {PICTURES} p {cond} GROUP BY {group} ORDER BY COUNT(*) DESC, 1"
            return [tuple(r) for r in self.conn.execute(sql, params)]

        truth = (
            f"COALESCE((SELECT c.label FROM {CORRECTIONS} c WHERE c.picture_id = p.id "
            "ORDER BY c.created_at DESC, c.id DESC LIMIT 1), json_extract(p.labels, '$.primary'), '(none)')"
        )
        years = [
            tuple(r)
            for r in self.conn.execute(
                f"SELECT substr(p.date, 1, 4) AS y, COUNT(*), SUM(p.status = 'ok') FROM {PICTURES} p {where} "
                "GROUP BY y ORDER BY y",
                params,
            )
        ]
        failed = Counter()
        for status, error in self.conn.execute(
            f"SELECT p.status, p.error FROM {PICTURES} p {where} {'AND' if where else 'WHERE'} "
            f"p.status NOT IN ({','.join('?' * len(DONE_STATUSES))})",
            [*params, *DONE_STATUSES],
        ):
            reason = _URL_RE.sub("<url>", error or "").strip()
            failed[(status, reason[:90])] += 1
        reasons = [(s, r, n) for (s, r), n in failed.most_common(20)]
        return {
            "source": q("p.source", "1"),
            "status": q("p.status", "1"),
            "media type": q("COALESCE(p.media_type, '(unknown)')", "1"),
            "label (ok pictures; corrections first)": q(truth, "1", "p.status = 'ok'"),
            "labeller version": q(
                "COALESCE(json_extract(p.labels, '$.version'), '(unlabelled)')", "1"
            ),
            "year": years,
            "failures": reasons,
        }


_UPSERT = (
    f"INSERT INTO {PICTURES} ({', '.join(_RECORD_FIELDS)}) VALUES ({', '.join(f':{c}' for c in _RECORD_FIELDS)}) "
    "ON CONFLICT (source, date) DO UPDATE SET "
    + ", ".join(
        f"{c} = COALESCE(excluded.{c}, {c})" if c == "labels" else f"{c} = excluded.{c}"
        for c in _RECORD_FIELDS
        if c not in ("source", "date")
    )
)


def select_where(
    table: str, equal: Mapping[str, Any], order_by: str, also: Iterable[str] = ()
) -> tuple[str, list[Any]]:
    """``SELECT *`` from ``table`` with only the filters that are set, and its parameters.

    Why one builder: every listing of the catalog filters by optional columns, and the
    placeholders must line up with the parameters.

    Args:
        table: the table to read.
        equal: column -> value (``column = ?``) or list of values (``column IN (?, ...)``);
            a None value sets no filter.
        order_by: the ``ORDER BY`` clause.
        also: further conditions without parameters (``delivered_at IS NULL``).

    Returns:
        ``(sql, params)`` for ``conn.execute``.
    """
    where: list[str] = []
    params: list[Any] = []
    for column, value in equal.items():
        if isinstance(value, list):
            where.append(f"{column} IN ({','.join('?' * len(value))})")
            params += value
        elif value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    where += also
    sql = f"SELECT * FROM {table}" + (f" WHERE {' AND '.join(where)}" if where else "")
    return sql + f" ORDER BY {order_by}", params


def _values(record: PictureRecord) -> dict[str, Any]:
    """A record as the named parameters of :data:`_UPSERT` (labels as sorted JSON)."""
    values = {f: getattr(record, f) for f in _RECORD_FIELDS}  # shallow: asdict deep-copies
    values["labels"] = (
        json.dumps(record.labels, sort_keys=True) if record.labels is not None else None
    )
    return values


def _row(row: sqlite3.Row) -> dict[str, Any]:
    d = dict(row)
    if d.get("labels"):
        try:
            d["labels"] = json.loads(d["labels"])
        except ValueError:
            d["labels"] = None
    return d
