"""The catalog's schema: table names, the migrations that take any older file to
:data:`SCHEMA_VERSION` (``PRAGMA user_version``), and what every part of the catalog shares
(the file's place, read-only connections, timestamps)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

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


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    """Whether the file has ``name``: a read-only connection never migrates, so a catalog
    of an older schema (v3: no marks, no embeddings) reads as having none of them."""
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
    return row.fetchone() is not None


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
