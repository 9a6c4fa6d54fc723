"""The catalog read-only: the gallery's list and the pages' lookups on one connection of
:func:`~astro_exp.data.catalog.schema.connect_read_only` (the web app opens one per
request, from any thread), with no write method in reach and no migration."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from astro_exp.data.catalog.corrections import read_corrections
from astro_exp.data.catalog.gallery import Gallery
from astro_exp.data.catalog.lookups import Lookups
from astro_exp.data.catalog.schema import connect_read_only


class CatalogReader(Gallery, Lookups):
    """The read side of :class:`~astro_exp.data.catalog.Catalog` over a connection it is
    given (its owner closes it): ``conn`` is what the review package's readers take."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def corrections(self) -> dict[int, str]:
        """{picture id: the newest corrected label} (:func:`read_corrections`)."""
        return read_corrections(self.conn)


@contextmanager
def read_only(path: str | Path, timeout: float = 5.0) -> Iterator[CatalogReader]:
    """A :class:`CatalogReader` on a read-only connection to ``path``, closed on exit;
    neither creates nor migrates the file."""
    with connect_read_only(path, timeout) as conn:
        yield CatalogReader(conn)
