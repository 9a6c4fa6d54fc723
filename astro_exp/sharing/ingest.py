"""Import a verified bundle into a data folder: pictures into the store, rows in one transaction.

Why in this order: the bundle is verified completely first (:func:`open_bundle`); its
pictures are then moved into the content-addressed store, and all rows and corrections are
written in ONE catalog transaction. If anything fails, the transaction rolls back and the
store files this import added are removed again, so a bad bundle or a busy catalog leaves
the data folder exactly as it was. Rows keep their ``(source, date)`` key (an existing day
is updated); a correction already present (same picture, label, who and time) is not
added twice, so importing the same bundle again changes nothing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from astro_exp.data.catalog import Catalog, catalog_path
from astro_exp.data.store import ImageStore
from astro_exp.errors import DataError
from astro_exp.files import move_into_place
from astro_exp.sharing.manifest import RECORD_FIELDS, record_of
from astro_exp.sharing.settings import BundleLimits
from astro_exp.sharing.unpack import open_bundle


@dataclass
class ImportResult:
    """What an import changed."""

    bundle: str
    creator: str
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    files_added: int = 0
    corrections_added: int = 0

    def line(self) -> str:
        return (
            f"imported {self.bundle} (by {self.creator}): {self.added} new rows, {self.updated} updated,"
            f" {self.unchanged} unchanged; {self.files_added} new picture files, {self.corrections_added} new corrections"
        )


@dataclass
class StagedFiles:
    """Files moved into the store by one import or merge, removed again if it fails."""

    store: ImageStore
    added: list[Path] = field(default_factory=list)

    def place(self, src: Path, rel: str) -> bool:
        """Move the verified file ``src`` to the store path ``rel``; True when it was new there."""
        final = self.store.abspath(rel)
        if final.is_file() and final.stat().st_size == src.stat().st_size:
            return False  # content-addressed: same name and size is the same picture
        move_into_place(src, final)
        self.added.append(final)
        return True

    def undo(self) -> None:
        for f in self.added:
            f.unlink(missing_ok=True)
        self.added.clear()


@contextmanager
def staged(store: ImageStore) -> Iterator[StagedFiles]:
    """Yield a StagedFiles whose files are removed when the block raises."""
    files = StagedFiles(store)
    try:
        yield files
    except BaseException:
        files.undo()
        raise


@contextmanager
def writer_lock(data_dir: Path) -> Iterator[None]:
    """The scraper's lock of the data folder: its orphan sweep must not see our files in flight."""
    from astro_exp.apod.scrape import scrape_lock

    try:
        with scrape_lock(data_dir):
            yield
    except DataError as e:
        if "another scrape" in str(e):
            raise DataError(
                f"a scrape, import or merge is writing to {data_dir}; wait for it to finish"
            ) from None
        raise


@contextmanager
def catalog_errors(path: Path) -> Iterator[None]:
    """SQLite trouble while writing, as one line (the transaction has rolled back by then)."""
    try:
        yield
    except sqlite3.OperationalError as e:
        if "locked" in str(e) or "busy" in str(e):
            raise DataError(
                f"the catalog {path} is busy (another program is writing); try again when it is done"
            ) from None
        raise DataError(f"could not write the catalog {path} ({e}); nothing was imported") from None


def import_bundle(
    bundle: str | Path,
    data_dir: str | Path,
    limits: BundleLimits | None = None,
    timeout: float = 30.0,
) -> ImportResult:
    """Verify ``bundle`` and add its pictures, rows and corrections to ``data_dir``; all or nothing."""
    limits = limits or BundleLimits()
    data_dir = Path(data_dir)
    store = ImageStore(data_dir, max_pixels=limits.max_pixels, max_bytes=limits.max_member_bytes)
    path = catalog_path(data_dir)
    with writer_lock(data_dir), open_bundle(bundle, limits, tmp_parent=store.tmp_dir) as vb:
        result = ImportResult(bundle=vb.name, creator=vb.creator)
        with Catalog(path, timeout=timeout) as cat, staged(store) as files, catalog_errors(path):
            for f in vb.manifest["files"]:
                result.files_added += files.place(vb.file(f["path"]), f["path"])
            with cat.transaction():
                for entry in vb.manifest["pictures"]:
                    before = cat.get(entry["source"], entry["date"])
                    pid = cat.upsert(record_of(entry))
                    if before is None:
                        result.added += 1
                    elif _same(before, cat.get_by_id(pid)):
                        result.unchanged += 1
                    else:
                        result.updated += 1
                    result.corrections_added += cat.merge_corrections(
                        pid, entry.get("corrections", [])
                    )
    return result


def _same(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    return a is not None and b is not None and all(a.get(k) == b.get(k) for k in RECORD_FIELDS)
