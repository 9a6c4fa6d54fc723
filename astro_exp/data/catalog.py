"""The picture catalog: one SQLite file (WAL) with a row per picture, human label corrections
and per-run predictions.

Why SQLite: a scraper, a training run and the web app read and write it at the same time
(WAL lets readers go on while one writer commits), every write is a transaction (a killed
scraper leaves the catalog as of its last commit), and ``(source, date)`` is unique so a
re-run updates a day instead of adding it twice. The schema is versioned with
``PRAGMA user_version``; :data:`MIGRATIONS` takes any older file to the current version.
This module is the only one that writes the catalog or knows its schema; the web app's
gallery pages read it through :func:`connect_read_only` (``astro_exp.web.queries``).
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from astro_exp.errors import DataError

CATALOG_FILE = "catalog.sqlite"
PICTURES = "pictures"
CORRECTIONS = "label_corrections"
PREDICTIONS = "predictions"
WATCHED = "watched_days"
ALERTS = "alerts"
EMBEDDINGS = "embeddings"
MARKS = "anomaly_marks"
SEARCH = "pictures_fts"  # FTS5 index of titles and explanations (external content: pictures)
# the weak labeller's primary label of ``p``: an indexed expression (pictures_weak), so the
# gallery's "catalog label" filter reads an index; every reader must spell it exactly so
WEAK_SQL = "json_extract(p.labels, '$.primary')"

# Statuses of a row. "Done" rows are not fetched again by a scrape; the others are retried.
OK = "ok"
DONE_STATUSES = (OK, "video", "no_image")
FAILED_STATUSES = ("http_error", "download_error", "bad_image", "not_a_page")

# Each entry takes the file from version i to i + 1 (user_version counts applied entries).
# Version 1 is the table layout of DESIGN.md (older web demo files hold it without a version);
# version 2 adds the video thumbnail, the file size and an index for "what is done";
# version 3 adds the watcher's state: the days it has handled and its alerts (delivered or not);
# version 4 adds the review loop: each run's embeddings of the pictures it classified (what
# the anomaly marks are spread over) and a person's anomaly marks (interesting or not);
# version 5 is the catalog at the size users have (10,000+ days) and the text+picture
# answer: what the picture alone and the text alone said and which decided (evidence), the
# text_picture review order's score stored with each prediction (how much text and picture
# disagree: 1 - sum_c min(p_text, p_picture); NULL without a text), indexes for every gallery
# sort and filter,
# and the FTS5 table of titles and explanations that the search box reads.
MIGRATIONS: tuple[str, ...] = (
    f"""
    CREATE TABLE IF NOT EXISTS {PICTURES} (
      id INTEGER PRIMARY KEY, source TEXT NOT NULL, date TEXT, page_url TEXT, image_url TEXT,
      hd_url TEXT, title TEXT, explanation TEXT, credit TEXT, copyright TEXT, media_type TEXT,
      sha256 TEXT, path TEXT, width INTEGER, height INTEGER, fetched_at TEXT, status TEXT,
      error TEXT, labels TEXT, UNIQUE (source, date));
    CREATE INDEX IF NOT EXISTS pictures_date ON {PICTURES} (date);
    CREATE INDEX IF NOT EXISTS pictures_sha ON {PICTURES} (sha256);
    CREATE TABLE IF NOT EXISTS {CORRECTIONS} (
      id INTEGER PRIMARY KEY, picture_id INTEGER NOT NULL REFERENCES {PICTURES}(id),
      label TEXT NOT NULL, who TEXT NOT NULL, created_at TEXT NOT NULL);
    CREATE INDEX IF NOT EXISTS corrections_picture ON {CORRECTIONS} (picture_id, created_at);
    CREATE TABLE IF NOT EXISTS {PREDICTIONS} (
      run_id TEXT NOT NULL, sha256 TEXT NOT NULL, label TEXT, confidence REAL, probs TEXT,
      anomaly_score REAL, is_anomaly INTEGER, created_at TEXT, PRIMARY KEY (run_id, sha256));
    CREATE INDEX IF NOT EXISTS predictions_run_label ON {PREDICTIONS} (run_id, label);
    """,
    f"""
    ALTER TABLE {PICTURES} ADD COLUMN thumbnail_url TEXT;
    ALTER TABLE {PICTURES} ADD COLUMN bytes INTEGER;
    CREATE INDEX IF NOT EXISTS pictures_source_status ON {PICTURES} (source, status, date);
    """,
    f"""
    CREATE TABLE IF NOT EXISTS {WATCHED} (
      source TEXT NOT NULL, date TEXT NOT NULL, run_id TEXT, status TEXT NOT NULL,
      processed_at TEXT NOT NULL, PRIMARY KEY (source, date));
    CREATE TABLE IF NOT EXISTS {ALERTS} (
      id INTEGER PRIMARY KEY, source TEXT NOT NULL, date TEXT NOT NULL, reason TEXT NOT NULL,
      payload TEXT NOT NULL, created_at TEXT NOT NULL, delivered_at TEXT, attempts INTEGER NOT NULL DEFAULT 0,
      last_error TEXT, UNIQUE (source, date, reason));
    """,
    f"""
    CREATE TABLE IF NOT EXISTS {EMBEDDINGS} (
      run_id TEXT NOT NULL, sha256 TEXT NOT NULL, dim INTEGER NOT NULL, vector BLOB NOT NULL,
      PRIMARY KEY (run_id, sha256));
    CREATE TABLE IF NOT EXISTS {MARKS} (
      id INTEGER PRIMARY KEY, picture_id INTEGER NOT NULL REFERENCES {PICTURES}(id),
      interesting INTEGER NOT NULL, who TEXT NOT NULL, created_at TEXT NOT NULL);
    CREATE INDEX IF NOT EXISTS marks_picture ON {MARKS} (picture_id, created_at);
    """,
    f"""
    ALTER TABLE {PREDICTIONS} ADD COLUMN picture_label TEXT;
    ALTER TABLE {PREDICTIONS} ADD COLUMN picture_confidence REAL;
    ALTER TABLE {PREDICTIONS} ADD COLUMN picture_probs TEXT;
    ALTER TABLE {PREDICTIONS} ADD COLUMN text_probs TEXT;
    ALTER TABLE {PREDICTIONS} ADD COLUMN evidence TEXT;
    ALTER TABLE {PREDICTIONS} ADD COLUMN text_picture REAL;
    UPDATE {PREDICTIONS} SET picture_label = label, picture_confidence = confidence,
      picture_probs = probs, evidence = 'picture' WHERE evidence IS NULL;
    CREATE INDEX IF NOT EXISTS predictions_run_conf ON {PREDICTIONS} (run_id, confidence);
    CREATE INDEX IF NOT EXISTS predictions_run_anomaly ON {PREDICTIONS} (run_id, anomaly_score);
    CREATE INDEX IF NOT EXISTS predictions_run_flag
      ON {PREDICTIONS} (run_id, is_anomaly, anomaly_score);
    CREATE INDEX IF NOT EXISTS predictions_run_text_picture
      ON {PREDICTIONS} (run_id, text_picture);
    CREATE INDEX IF NOT EXISTS pictures_gallery_date ON {PICTURES} (date, id)
      WHERE sha256 IS NOT NULL;
    CREATE INDEX IF NOT EXISTS pictures_gallery_title ON {PICTURES} (title COLLATE NOCASE, id)
      WHERE sha256 IS NOT NULL;
    CREATE INDEX IF NOT EXISTS pictures_weak ON {PICTURES} (json_extract(labels, '$.primary'));
    CREATE INDEX IF NOT EXISTS corrections_label ON {CORRECTIONS} (label, picture_id);
    CREATE VIRTUAL TABLE IF NOT EXISTS {SEARCH} USING fts5(
      title, explanation, content='{PICTURES}', content_rowid='id', tokenize='porter unicode61');
    CREATE TRIGGER IF NOT EXISTS pictures_fts_insert AFTER INSERT ON {PICTURES} BEGIN
      INSERT INTO {SEARCH} (rowid, title, explanation) VALUES (new.id, new.title, new.explanation);
    END;
    CREATE TRIGGER IF NOT EXISTS pictures_fts_delete AFTER DELETE ON {PICTURES} BEGIN
      INSERT INTO {SEARCH} ({SEARCH}, rowid, title, explanation)
        VALUES ('delete', old.id, old.title, old.explanation);
    END;
    CREATE TRIGGER IF NOT EXISTS pictures_fts_update AFTER UPDATE OF title, explanation
      ON {PICTURES} BEGIN
      INSERT INTO {SEARCH} ({SEARCH}, rowid, title, explanation)
        VALUES ('delete', old.id, old.title, old.explanation);
      INSERT INTO {SEARCH} (rowid, title, explanation) VALUES (new.id, new.title, new.explanation);
    END;
    INSERT INTO {SEARCH} ({SEARCH}) VALUES ('rebuild');
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)
# the predictions table's columns in order (v5); every writer names them
PREDICTION_COLUMNS = (
    "run_id",
    "sha256",
    "label",
    "confidence",
    "probs",
    "anomaly_score",
    "is_anomaly",
    "created_at",
    "picture_label",
    "picture_confidence",
    "picture_probs",
    "text_probs",
    "evidence",
    "text_picture",
)
MAX_WHO = 80  # characters of a correction's "who" that are kept
_URL_RE = re.compile(r"\bhttps?://\S+?(?=:\s|[\s;,]|$)")


def now_iso() -> str:
    """UTC time to the second, ISO 8601 (what every ``*_at`` column holds)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def catalog_path(data_dir: str | Path) -> Path:
    """Where the catalog of ``paths.data_dir`` lives."""
    return Path(data_dir) / CATALOG_FILE


@contextmanager
def connect_read_only(path: str | Path, timeout: float = 5.0) -> Iterator[sqlite3.Connection]:
    """A read-only connection (``mode=ro``, rows as :class:`sqlite3.Row`) for readers that
    must never change the catalog (the web pages, one per request, from any thread); WAL
    lets them read while a scraper writes. Neither creates nor migrates the file."""
    conn = sqlite3.connect(
        f"{Path(path).resolve().as_uri()}?mode=ro",
        uri=True,
        timeout=timeout,
        check_same_thread=False,
    )
    conn.row_factory = sqlite3.Row
    try:
        yield conn
    finally:
        conn.close()


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


class Catalog:
    """The catalog file; open with ``Catalog(path)`` (created and migrated as needed).

    One connection, for the thread that opened it (the scraper writes from its main thread
    only; its download threads never touch the catalog). Writes go through
    :meth:`transaction` (``BEGIN IMMEDIATE``: the write lock is taken up front, so two
    writers queue instead of failing half-way).
    """

    def __init__(self, path: str | Path, timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
            self.conn.row_factory = sqlite3.Row
            self.conn.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL: never corrupt; a power cut (not a kill) may lose the last commits,
            # whose picture files the next scrape then sweeps as orphans and fetches again
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.DatabaseError as e:
            raise DataError(
                f"{self.path} is not a usable SQLite catalog ({e}); move it away and scrape again"
            ) from None
        self._depth = 0
        self._lock = threading.RLock()
        self._migrate()

    # -- lifecycle -----------------------------------------------------------------------
    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        current = self.version
        if current > SCHEMA_VERSION:
            raise DataError(
                f"{self.path} has catalog schema v{current}, newer than this astro-exp (v{SCHEMA_VERSION}); "
                "upgrade astro-exp or use another paths.data_dir"
            )
        for version in range(current, SCHEMA_VERSION):
            with self.transaction():
                for stmt in _statements(MIGRATIONS[version]):
                    try:
                        self.conn.execute(stmt)
                    except sqlite3.OperationalError as e:  # a column a demo catalog already has
                        if "duplicate column" not in str(e):
                            raise
                self.conn.execute(f"PRAGMA user_version = {version + 1}")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All writes inside commit together or not at all; nested calls join the outer one."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self.conn
                finally:
                    self._depth -= 1
                return
            self.conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            else:
                self.conn.execute("COMMIT")
            finally:
                self._depth = 0

    # -- pictures ------------------------------------------------------------------------
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
        where, params = [], []
        if sources is not None:
            srcs = list(sources)
            where.append(f"source IN ({','.join('?' * len(srcs))})")
            params += srcs
        if status is not None:
            where.append("status = ?")
            params.append(status)
        if media_type is not None:
            where.append("media_type = ?")
            params.append(media_type)
        sql = (
            f"SELECT * FROM {PICTURES}"
            + (f" WHERE {' AND '.join(where)}" if where else "")
            + " ORDER BY date, source"
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

    # -- human corrections ------------------------------------------------------------------
    def _require_picture(self, picture_id: int) -> None:
        """A person's answer names a picture that exists (inside the caller's transaction)."""
        row = self.conn.execute(f"SELECT 1 FROM {PICTURES} WHERE id = ?", (int(picture_id),))
        if row.fetchone() is None:
            raise DataError(f"no picture {picture_id} in {self.path}; check the id")

    def add_correction(self, picture_id: int, label: str, who: str) -> str:
        """Record a person's label for a picture (training prefers it over the weak label)."""
        if not label.strip() or not who.strip():
            raise DataError("a label correction needs a label and who made it")
        when = now_iso()
        with self.transaction():
            self._require_picture(picture_id)
            self.conn.execute(
                f"INSERT INTO {CORRECTIONS} (picture_id, label, who, created_at) VALUES (?, ?, ?, ?)",
                (int(picture_id), label.strip(), who.strip()[:MAX_WHO], when),
            )
        return when

    def merge_corrections(self, picture_id: int, corrections: Iterable[Mapping[str, Any]]) -> int:
        """Add another catalog's corrections of a picture (``label``, ``who``, ``created_at``
        kept as recorded) that this one lacks, in one transaction; returns how many were new.
        The same correction (picture, label, who and time) is never stored twice, so importing
        a bundle again changes nothing."""
        n = 0
        with self.transaction():
            for c in corrections:
                row = (
                    int(picture_id),
                    str(c["label"]),
                    str(c["who"])[:MAX_WHO],
                    str(c["created_at"]),
                )
                exists = self.conn.execute(
                    f"SELECT 1 FROM {CORRECTIONS} WHERE picture_id = ? AND label = ? AND who = ? AND created_at = ?",
                    row,
                ).fetchone()
                if exists is None:
                    self.conn.execute(
                        f"INSERT INTO {CORRECTIONS} (picture_id, label, who, created_at) VALUES (?, ?, ?, ?)",
                        row,
                    )
                    n += 1
        return n

    def corrections(self) -> dict[int, str]:
        """{picture id: the newest corrected label} (ties broken by insertion order)."""
        return read_corrections(self.conn)

    def correction_history(self) -> dict[int, list[dict[str, Any]]]:
        """{picture id: every correction (``label``, ``who``, ``created_at``), oldest first}
        (what a bundle carries, so the receiver sees who said what and when)."""
        out: dict[int, list[dict[str, Any]]] = {}
        for r in self.conn.execute(
            f"SELECT picture_id, label, who, created_at FROM {CORRECTIONS} ORDER BY created_at, id"
        ):
            out.setdefault(int(r["picture_id"]), []).append(
                {"label": r["label"], "who": r["who"], "created_at": r["created_at"]}
            )
        return out

    # -- predictions -------------------------------------------------------------------------
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

    # -- anomaly marks ----------------------------------------------------------------------
    def add_anomaly_mark(self, picture_id: int, interesting: bool, who: str) -> str:
        """Record a person's verdict on a flagged picture (the newest mark of a picture wins)."""
        if not who.strip():
            raise DataError("an anomaly mark needs who made it")
        when = now_iso()
        with self.transaction():
            self._require_picture(picture_id)
            self.conn.execute(
                f"INSERT INTO {MARKS} (picture_id, interesting, who, created_at) VALUES (?, ?, ?, ?)",
                (int(picture_id), int(bool(interesting)), who.strip()[:MAX_WHO], when),
            )
        return when

    def anomaly_marks(self) -> dict[int, bool]:
        """{picture id: interesting?}, the newest mark of each picture."""
        return read_marks(self.conn)

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

    # -- the watcher's state -------------------------------------------------------------------
    def watched_days(self, source: str) -> dict[str, str]:
        """{date: status} of the days the watcher has handled for ``source``."""
        rows = self.conn.execute(f"SELECT date, status FROM {WATCHED} WHERE source = ?", (source,))
        return {r[0]: r[1] for r in rows}

    def last_watched(self, source: str) -> str | None:
        """The newest day the watcher has handled (ISO date), None before its first poll."""
        row = self.conn.execute(
            f"SELECT MAX(date) FROM {WATCHED} WHERE source = ?", (source,)
        ).fetchone()
        return row[0] if row and row[0] else None

    def mark_watched(
        self,
        source: str,
        date: str,
        status: str,
        run_id: str | None,
        alerts: Iterable[tuple[str, Mapping[str, Any]]] = (),
    ) -> list[int]:
        """Record a handled day and queue its alerts ``(reason, payload)`` in one transaction
        (a day is never handled twice, and an alert is queued exactly once); returns the new
        alert ids (an alert already queued for that day and reason is not added again)."""
        when = now_iso()
        ids: list[int] = []
        with self.transaction():
            self.conn.execute(
                f"INSERT OR REPLACE INTO {WATCHED} (source, date, run_id, status, processed_at) VALUES (?,?,?,?,?)",
                (source, date, run_id, status, when),
            )
            for reason, payload in alerts:
                cur = self.conn.execute(
                    f"INSERT OR IGNORE INTO {ALERTS} (source, date, reason, payload, created_at) VALUES (?,?,?,?,?)",
                    (source, date, reason, json.dumps(payload, sort_keys=True), when),
                )
                if cur.rowcount:
                    ids.append(int(cur.lastrowid))
        return ids

    def alerts(
        self,
        pending_only: bool = False,
        source: str | None = None,
        ids: Iterable[int] | None = None,
    ) -> list[dict[str, Any]]:
        """Queued alerts, oldest first (payload parsed); ``pending_only``: not yet delivered."""
        where, params = [], []
        if ids is not None:
            wanted = [int(i) for i in ids]
            where.append(f"id IN ({','.join('?' * len(wanted))})")
            params += wanted
        if pending_only:
            where.append("delivered_at IS NULL")
        if source is not None:
            where.append("source = ?")
            params.append(source)
        sql = (
            f"SELECT * FROM {ALERTS}"
            + (f" WHERE {' AND '.join(where)}" if where else "")
            + " ORDER BY id"
        )
        out = []
        for r in self.conn.execute(sql, params):
            d = dict(r)
            d["payload"] = json.loads(d["payload"])
            out.append(d)
        return out

    def alert_counts(self, source: str) -> tuple[int, int]:
        """(alerts queued, of which not yet delivered) for ``source``."""
        row = self.conn.execute(
            f"SELECT COUNT(*), COALESCE(SUM(delivered_at IS NULL), 0) FROM {ALERTS} WHERE source = ?",
            (source,),
        ).fetchone()
        return int(row[0]), int(row[1])

    def alert_attempt(self, alert_id: int, error: str | None) -> None:
        """Note a delivery attempt: delivered when ``error`` is None, else why it failed."""
        with self.transaction():
            self.conn.execute(
                f"UPDATE {ALERTS} SET attempts = attempts + 1, last_error = ?, "
                "delivered_at = CASE WHEN ? IS NULL THEN ? ELSE delivered_at END WHERE id = ?",
                (error, error, now_iso(), int(alert_id)),
            )


_UPSERT = (
    f"INSERT INTO {PICTURES} ({', '.join(_RECORD_FIELDS)}) VALUES ({', '.join(f':{c}' for c in _RECORD_FIELDS)}) "
    "ON CONFLICT (source, date) DO UPDATE SET "
    + ", ".join(
        f"{c} = COALESCE(excluded.{c}, {c})" if c == "labels" else f"{c} = excluded.{c}"
        for c in _RECORD_FIELDS
        if c not in ("source", "date")
    )
)


# -- reads that take any connection (the web app's read-only one too) ---------------------------
def read_corrections(conn: sqlite3.Connection) -> dict[int, str]:
    """{picture id: the newest corrected label} (ties broken by insertion order)."""
    rows = conn.execute(f"SELECT picture_id, label FROM {CORRECTIONS} ORDER BY created_at, id")
    return {int(pid): label for pid, label in rows}  # later rows overwrite earlier ones


def read_marks(conn: sqlite3.Connection) -> dict[int, bool]:
    """{picture id: interesting?}: the newest anomaly mark of each marked picture."""
    if not _has_table(conn, MARKS):  # a v3 file seen read-only (nothing migrated it yet)
        return {}
    rows = conn.execute(f"SELECT picture_id, interesting FROM {MARKS} ORDER BY created_at, id")
    return {int(pid): bool(flag) for pid, flag in rows}


def read_embeddings(conn: sqlite3.Connection, run_id: str) -> dict[str, np.ndarray]:
    """{sha256: float32 vector} a run stored with :meth:`Catalog.add_embeddings`."""
    if not _has_table(conn, EMBEDDINGS):
        return {}
    rows = conn.execute(f"SELECT sha256, dim, vector FROM {EMBEDDINGS} WHERE run_id = ?", (run_id,))
    return {
        str(sha): np.frombuffer(blob, dtype=np.float32, count=int(dim)) for sha, dim, blob in rows
    }


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    """Whether the file has ``name``: a read-only connection never migrates, so a catalog
    of an older schema (v3: no marks, no embeddings) reads as having none of them."""
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
    return row.fetchone() is not None


def _values(record: PictureRecord) -> dict[str, Any]:
    """A record as the named parameters of :data:`_UPSERT` (labels as sorted JSON)."""
    values = {f: getattr(record, f) for f in _RECORD_FIELDS}  # shallow: asdict deep-copies
    values["labels"] = (
        json.dumps(record.labels, sort_keys=True) if record.labels is not None else None
    )
    return values


def _statements(script: str) -> list[str]:
    """A migration's statements, split where SQLite says one is complete (a trigger's body
    holds semicolons of its own)."""
    out, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if current.strip() and sqlite3.complete_statement(current):
            out.append(current.strip().rstrip(";").strip())
            current = ""
    if current.strip():
        out.append(current.strip())
    return out


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


def _row(row: sqlite3.Row) -> dict[str, Any]:
    d = dict(row)
    if d.get("labels"):
        try:
            d["labels"] = json.loads(d["labels"])
        except ValueError:
            d["labels"] = None
    return d
