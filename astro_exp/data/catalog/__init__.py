"""The picture catalog: one SQLite file (WAL) with a row per picture, human label corrections,
per-run predictions and the watcher's state.

Why SQLite: a scraper, a training run and the web app read and write it at the same time
(WAL lets readers go on while one writer commits), every write is a transaction (a killed
scraper leaves the catalog as of its last commit), and ``(source, date)`` is unique so a
re-run updates a day instead of adding it twice. The schema is versioned with
``PRAGMA user_version``; :data:`MIGRATIONS` takes any older file to the current version.
This package is the only code that writes the catalog or knows its schema; the web app's
pages read it through :func:`read_only` (a :class:`CatalogReader`, no write in reach).

The parts, one file each: ``schema.py`` (tables, migrations, connections), ``pictures.py``
(picture rows, weak labels, stats), ``corrections.py`` (a person's label corrections and
anomaly marks), ``predictions.py`` (a run's predictions and embeddings), ``watch_state.py``
(watched days and alerts), ``gallery.py`` (the gallery's filtered, sorted, paged list;
``gallery_filters.py``: what it asks for), ``lookups.py`` (the pages' reads by key).
:class:`Catalog` is all of them over one connection; ``reader.py``'s
:class:`CatalogReader` is the two read parts on a read-only one.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from astro_exp.data.catalog.corrections import Corrections, read_corrections, read_marks
from astro_exp.data.catalog.gallery import CountCache, Gallery
from astro_exp.data.catalog.gallery_filters import Filters
from astro_exp.data.catalog.lookups import Lookups
from astro_exp.data.catalog.pictures import PictureRecord, Pictures
from astro_exp.data.catalog.predictions import (
    Predictions,
    read_embeddings,
    read_predicted_pictures,
    text_picture_gap,
)
from astro_exp.data.catalog.reader import CatalogReader, read_only
from astro_exp.data.catalog.schema import (
    ALERTS,
    CATALOG_FILE,
    CORRECTIONS,
    DONE_STATUSES,
    EMBEDDINGS,
    FAILED_STATUSES,
    MARKS,
    MAX_WHO,
    MIGRATIONS,
    OK,
    PICTURES,
    PREDICTION_COLUMNS,
    PREDICTIONS,
    SCHEMA_VERSION,
    SEARCH,
    WATCHED,
    WEAK_SQL,
    _statements,
    catalog_path,
    connect_read_only,
    now_iso,
)
from astro_exp.data.catalog.watch_state import WatchState
from astro_exp.errors import DataError


class Catalog(Pictures, Corrections, Predictions, WatchState, Gallery, Lookups):
    """The catalog file; open with ``Catalog(path)`` (created and migrated as needed).

    One connection, for the thread that opened it (the scraper writes from its main thread
    only; its download threads never touch the catalog). Writes go through
    :meth:`transaction` (``BEGIN IMMEDIATE``: the write lock is taken up front, so two
    writers queue instead of failing half-way).

    Args:
        path: the SQLite file (``catalog_path(data_dir)``); created and migrated as needed.
        timeout: seconds to wait for another writer's lock.

    >>> import tempfile
    >>> with Catalog(catalog_path(tempfile.mkdtemp())) as cat:
    ...     pid = cat.upsert(PictureRecord(source="apod", date="2024-03-01", status=OK, title="M31"))
    ...     _ = cat.add_correction(pid, "galaxy", who="ada")
    ...     (cat.count(), cat.get_by_id(pid)["title"], cat.corrections())
    (1, 'M31', {1: 'galaxy'})
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


__all__ = [
    "ALERTS",
    "CATALOG_FILE",
    "CORRECTIONS",
    "DONE_STATUSES",
    "EMBEDDINGS",
    "FAILED_STATUSES",
    "MARKS",
    "MAX_WHO",
    "MIGRATIONS",
    "OK",
    "PICTURES",
    "PREDICTIONS",
    "PREDICTION_COLUMNS",
    "SCHEMA_VERSION",
    "SEARCH",
    "WATCHED",
    "WEAK_SQL",
    "Catalog",
    "CatalogReader",
    "CountCache",
    "Filters",
    "PictureRecord",
    "catalog_path",
    "connect_read_only",
    "now_iso",
    "read_corrections",
    "read_embeddings",
    "read_marks",
    "read_only",
    "read_predicted_pictures",
    "text_picture_gap",
]
