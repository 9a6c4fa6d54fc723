"""Import a local APOD archive or mirror (:mod:`astro_exp.apod.mirror`) into the catalog.

Why an importer beside the scraper: the polite scraper needs hours for the whole archive
(one page and one picture a second), while a mirror checkout already holds every record
and picture; importing it takes minutes, and the scraper then only adds what is newer.

The rows it writes are the scraper's own: source ``into`` (``apod`` by default), keyed by
``(source, date)``, status ``ok`` with the picture in the content-addressed store (or
``video``/``no_image``), the weak labels of the label rules. So the scraper counts every
imported day as done and never fetches it, and a picture the archive has on two days is
stored once.

Why it is safe to kill, and fast: it holds the scrape lock (one writer per data folder),
sweeps what a killed run left (temporary files, store files without a row), skips the days
an earlier run finished, then works in batches: each batch's pictures are checked (a JPEG
is decoded at its smallest DCT scale, which still reads every byte, so a truncated file
fails; other formats are decoded fully), put into the store (temporary file + rename),
flushed to disk with one ``sync`` for the batch, and only then its rows are written in one
transaction. A kill leaves whole batches of rows, each pointing at a complete file; the
re-run finishes the rest. A bad row (malformed JSON, missing or unreadable picture) is one
warning line and is skipped; nothing else stops.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import time
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from astro_exp.apod.mirror import MirrorRow, detect_layout, read_rows
from astro_exp.apod.scrape import day_record, scrape_lock
from astro_exp.apod.text import DEFAULT_BASE_URL
from astro_exp.data.catalog import DONE_STATUSES, OK, Catalog, PictureRecord, catalog_path
from astro_exp.data.labels import Labeller
from astro_exp.data.store import ImageStore
from astro_exp.imageio import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PIXELS,
    FORMATS,
    BadImage,
    decode_picture,
)
from astro_exp.progress import progress as progress_bar

log = logging.getLogger(__name__)

BATCH = 500  # rows per transaction (and per disk flush)


@dataclass
class ImportSummary:
    """Counts of one import; ``line()`` is what ``astro-exp scrape source=apod_mirror`` prints."""

    source: str
    root: str
    layout: str
    days: int = 0  # distinct days read (bad rows included)
    new: int = 0  # picture rows written by this run
    shared: int = 0  # of those, pictures the store already held (the same content)
    videos: int = 0  # video / no-picture rows written
    skipped: int = 0  # days an earlier run (import or scrape) finished
    bad: list[str] = field(default_factory=list)  # one line per bad row
    bytes_stored: int = 0
    seconds: float = 0.0
    swept: tuple[int, int] = (0, 0)

    def line(self) -> str:
        bad = f"{len(self.bad)} bad rows skipped" + (" (listed above)" if self.bad else "")
        return (
            f"{self.source} <- {self.root} ({self.layout}): {self.days} days: {self.new} new "
            f"({self.shared} pictures already in the store), {self.skipped} skipped (done before), "
            f"{self.videos} without picture (video/other), {bad}; "
            f"{self.bytes_stored / 1e6:.1f} MB stored, {self.seconds:.1f} s"
        )


def import_mirror(
    root: str | Path,
    data_dir: str | Path,
    into: str = "apod",
    layout: str = "auto",
    labeller: Labeller | None = None,
    base_url: str = DEFAULT_BASE_URL,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    batch: int = BATCH,
    workers: int = 2,
    progress: bool = True,
) -> ImportSummary:
    """Import every day of the archive or mirror at ``root`` that the catalog under
    ``data_dir`` lacks (as source ``into``); returns the counts. Re-run it after a kill."""
    t0 = time.perf_counter()
    root = Path(root).expanduser()
    kind = detect_layout(root, layout)
    data_dir = Path(data_dir)
    summary = ImportSummary(into, str(root), kind)
    with scrape_lock(data_dir), Catalog(catalog_path(data_dir)) as catalog:
        store = ImageStore(data_dir, max_pixels=max_pixels, max_bytes=max_bytes)
        summary.swept = store.sweep(catalog.referenced_paths())
        todo = _todo(read_rows(root, kind, base_url), catalog, store, into, summary)
        importer = _Importer(store, into, labeller, summary)
        bar = progress_bar(
            total=len(todo), enabled=progress, unit="day", desc=f"importing {root.name}"
        )
        try:
            with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
                for start in range(0, len(todo), max(1, batch)):
                    chunk = todo[start : start + max(1, batch)]
                    staged = list(pool.map(importer.stage, chunk))
                    importer.commit(catalog, chunk, staged)
                    bar.update(len(chunk))
        finally:
            bar.close()
    summary.seconds = time.perf_counter() - t0
    return summary


def _todo(
    rows: Iterable[MirrorRow],
    catalog: Catalog,
    store: ImageStore,
    into: str,
    summary: ImportSummary,
) -> list[MirrorRow]:
    """The rows still to import: bad ones reported, days done before skipped, one per date."""
    known = catalog.statuses(into)
    seen: dict[str, str] = {}
    todo = []
    for row in rows:
        if row.error is None and row.date in seen:
            row.error = f"{row.date} again (first at {seen[row.date]}); the first one is kept"
        if row.error is not None:
            _bad(summary, row, row.error)
            if row.date and row.date not in seen:
                summary.days += 1
                seen[row.date] = row.where
            continue
        assert row.date is not None
        seen[row.date] = row.where
        summary.days += 1
        status, path = known.get(row.date, (None, None))
        if status in DONE_STATUSES and (status != OK or (path and store.abspath(path).is_file())):
            summary.skipped += 1
            continue
        todo.append(row)
    return todo


def _bad(summary: ImportSummary, row: MirrorRow, error: str) -> None:
    line = f"{row.where}" + (f" ({row.date})" if row.date else "") + f": {error}"
    summary.bad.append(line)
    log.warning("bad row %s", line)


@dataclass
class _Staged:
    record: PictureRecord | None = None
    error: str | None = None
    new_file: bool = False
    shared: bool = False


class _Importer:
    """Stages rows on worker threads (files only), writes the catalog on the calling one."""

    def __init__(
        self, store: ImageStore, into: str, labeller: Labeller | None, summary: ImportSummary
    ) -> None:
        self.store = store
        self.into = into
        self.labeller = labeller
        self.summary = summary

    def stage(self, row: MirrorRow) -> _Staged:
        day = row.day
        assert day is not None and row.date is not None
        rec = day_record(self.into, row.date, OK, day)
        if self.labeller is not None and day.title:
            rec.labels = self.labeller.label(day.title, day.explanation).to_json()
        if day.media_type != "image":
            rec.status = "video" if day.media_type == "video" else "no_image"
            return _Staged(rec)
        assert row.picture is not None
        try:
            data = _read(row.picture, self.store.max_bytes)
            fmt, width, height = check_bytes(data, self.store.max_pixels, self.store.max_bytes)
        except BadImage as e:
            return _Staged(error=f"{row.picture.name}: {e}")
        sha = hashlib.sha256(data).hexdigest()
        rel = self.store.rel_path(sha, FORMATS[fmt])
        final = self.store.abspath(rel)
        shared = final.is_file() and final.stat().st_size == len(data)
        if not shared:
            _place(data, self.store.tmp_dir, final)
        rec.sha256, rec.path, rec.width, rec.height, rec.bytes = sha, rel, width, height, len(data)
        return _Staged(rec, new_file=not shared, shared=shared)

    def commit(self, catalog: Catalog, rows: list[MirrorRow], staged: list[_Staged]) -> None:
        """The batch's files flushed to disk, then its rows in one transaction."""
        if any(s.new_file for s in staged):
            os.sync()  # one flush for the batch: a row never points at unflushed bytes
        records = []
        for row, s in zip(rows, staged, strict=True):
            if s.error is not None:
                _bad(self.summary, row, s.error)
                continue
            assert s.record is not None
            records.append(s.record)
            if s.record.status == OK:
                self.summary.new += 1
                self.summary.shared += s.shared
                self.summary.bytes_stored += (s.record.bytes or 0) if s.new_file else 0
            else:
                self.summary.videos += 1
        if records:
            catalog.upsert_many(records)


def _read(path: Path, max_bytes: int) -> bytes:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise BadImage("missing picture (no such file)") from None
    if size > max_bytes:
        raise BadImage(f"{size:,} bytes, over the {max_bytes:,}-byte limit")
    if size == 0:
        raise BadImage("empty file")
    return path.read_bytes()


def check_bytes(data: bytes, max_pixels: int, max_bytes: int) -> tuple[str, int, int]:
    """(Pillow format, width, height) of picture bytes the store accepts, or BadImage.

    A JPEG decodes at its smallest DCT scale (every byte is still read, so a truncated
    file fails, at a fraction of a full decode); other formats decode fully. The size is the
    header's (the file's own, before EXIF rotation), as the store records it.
    """
    try:
        with Image.open(io.BytesIO(data)) as im:
            width, height = im.size
    except (OSError, SyntaxError, ValueError) as e:
        raise BadImage(f"not a readable picture ({e})") from None
    im = decode_picture(
        data,
        max_pixels=max_pixels,
        max_bytes=max_bytes,
        formats=FORMATS,
        mode=None,
        exif_transpose=False,
        draft_size=(1, 1),
    )
    return str(im.format), width, height


def _place(data: bytes, tmp_dir: Path, final: Path) -> None:
    """Write ``data`` at ``final`` all at once (a temporary file in the store, renamed); the
    batch's one sync makes it durable before any row names it."""
    tmp = tmp_dir / f".download-{os.getpid()}-{uuid.uuid4().hex[:12]}.part"
    try:
        tmp.write_bytes(data)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


__all__ = ["BATCH", "ImportSummary", "check_bytes", "import_mirror"]
