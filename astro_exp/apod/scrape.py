"""Scrape APOD days into the catalog and image store, resumably.

Why it is safe to kill at any point: every day is one catalog transaction written after
its picture is already in the store (downloaded to a temporary file, fsynced, decoded,
renamed); a day with status "ok" (or a recorded video) is never fetched again; and the
next run first sweeps temporary files and store files without a row. So a re-run
finishes the range with no duplicate rows and no partial files, and a re-run of a
finished range sends no picture request at all.

Network work (pages, pictures) runs on the session's ``max_concurrency`` threads; all
catalog writes happen on the calling thread.

The request, its defaults, the summary and the session builder live in
:mod:`astro_exp.apod.scrape_settings` and are importable from here too.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from astro_exp.apod.api import ApodApiClient
from astro_exp.apod.client import ApodClient
from astro_exp.apod.pages import ApodDay, NotAnApodPage
from astro_exp.apod.scrape_settings import (
    HTTP_DEFAULTS,
    REQUEST_DEFAULTS,
    ScrapeRequest,
    ScrapeSummary,
    build_session,
    load_defaults,
    parse_date,
)
from astro_exp.apod.text import FIRST_DAY
from astro_exp.data.catalog import DONE_STATUSES, OK, Catalog, PictureRecord, catalog_path, now_iso
from astro_exp.data.labels import Labeller
from astro_exp.data.store import ImageStore
from astro_exp.errors import DataError
from astro_exp.imageio import BadImage
from astro_exp.net.session import DownloadError, HttpError, PoliteSession, RateLimited
from astro_exp.progress import progress as progress_bar

log = logging.getLogger(__name__)

LOCK_FILE = ".scrape.lock"


def day_record(
    source: str, date: str, status: str, day: ApodDay | None = None, **extra: Any
) -> PictureRecord:
    """A catalog row of one APOD day: the day's own fields (page, picture addresses, text,
    credit, media type) when it was read, and ``extra`` columns (error, path, sha256, ...).
    The scraper and the mirror import both write days through it."""
    rec = PictureRecord(source=source, date=date, status=status, fetched_at=now_iso(), **extra)
    if day is not None:
        rec.page_url = day.page_url
        rec.image_url, rec.hd_url, rec.thumbnail_url = day.image_url, day.hd_url, day.thumbnail_url
        rec.title, rec.explanation = day.title, day.explanation
        rec.credit, rec.copyright, rec.media_type = day.credit, day.copyright, day.media_type
    return rec


@contextmanager
def scrape_lock(data_dir: Path) -> Iterator[None]:
    """One scraper per data folder (the orphan sweep must not see another's files in flight).

    An OS file lock: a killed scraper releases it with its process.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no sweep protection
        yield
        return
    data_dir.mkdir(parents=True, exist_ok=True)
    with (data_dir / LOCK_FILE).open("a") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise DataError(
                f"another scrape is writing to {data_dir}; wait for it to finish"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


@dataclass
class _Scraper:
    """One run: resolves the days, fetches what is missing, writes rows as days finish."""

    req: ScrapeRequest
    catalog: Catalog
    store: ImageStore
    session: PoliteSession
    labeller: Labeller | None
    stop: threading.Event = field(default_factory=threading.Event)

    # -- worker side (threads): network and files, no catalog --------------------------------
    def _record(
        self,
        d: dt.date,
        status: str,
        day: ApodDay | None = None,
        error: str | None = None,
        page_url: str | None = None,
        **extra: Any,
    ) -> PictureRecord:
        return day_record(
            self.req.source,
            d.isoformat(),
            status,
            day,
            error=error,
            page_url=page_url,
            **extra,
        )

    def _picture(self, day: ApodDay) -> PictureRecord:
        d = day.date
        if day.media_type == "video":
            return self._record(d, "video", day)
        urls = (
            [day.hd_url, day.image_url] if self.req.picture == "hd" else [day.image_url, day.hd_url]
        )
        url = next((u for u in urls if u), None)
        if day.media_type != "image" or url is None:
            return self._record(
                d, "no_image", day, error=f"media type {day.media_type}, no picture to store"
            )
        try:
            dl = self.session.download(url, self.store.tmp_dir, max_bytes=self.req.max_bytes)
            stored = self.store.commit(dl.path, dl.sha256)
        except RateLimited as e:
            self.stop.set()
            return self._record(d, "http_error", day, error=str(e))
        except DownloadError as e:
            return self._record(d, "download_error", day, error=str(e))
        except HttpError as e:
            return self._record(d, "http_error", day, error=str(e))
        except BadImage as e:
            return self._record(d, "bad_image", day, error=f"{url}: {e}")
        return self._record(
            d,
            OK,
            day,
            sha256=stored.sha256,
            path=stored.path,
            width=stored.width,
            height=stored.height,
            bytes=stored.bytes,
        )

    def _html_day(self, client: ApodClient, d: dt.date, url: str) -> PictureRecord | None:
        if self.stop.is_set():
            return None
        try:
            day = client.fetch_day(d, url)
        except RateLimited as e:
            self.stop.set()
            return self._record(d, "http_error", error=str(e), page_url=url)
        except HttpError as e:
            return self._record(d, "http_error", error=str(e), page_url=url)
        except NotAnApodPage as e:
            return self._record(d, "not_a_page", error=str(e), page_url=url)
        return self._picture(day)

    def _api_day(self, day: ApodDay) -> PictureRecord | None:
        return None if self.stop.is_set() else self._picture(day)

    # -- main thread -----------------------------------------------------------------------------
    def _done(self, dates: list[dt.date]) -> set[dt.date]:
        """Days an earlier run finished (an "ok" row whose file went missing is not done)."""
        known = self.catalog.statuses(self.req.source, [d.isoformat() for d in dates])
        done = set()
        for d in dates:
            status, path = known.get(d.isoformat(), (None, None))
            if status in DONE_STATUSES and (
                status != OK or (path and self.store.abspath(path).is_file())
            ):
                done.add(d)
        return done

    def _tasks(
        self, summary: ScrapeSummary
    ) -> list[tuple[dt.date, Callable[[], PictureRecord | None]]]:
        req = self.req
        if req.kind == "html":
            client = ApodClient(self.session, req.base_url)
            listed = client.list_dates(req.start_date, req.end_date, req.last_days)
            done = self._done([d for d, _ in listed])
            summary.days, summary.skipped = len(listed), len(done)
            return [
                (d, lambda d=d, u=u: self._html_day(client, d, u))
                for d, u in listed
                if d not in done
            ]
        api = ApodApiClient(
            self.session, req.api_url, api_key=req.api_key, pages_base_url=req.base_url
        )
        if req.last_days is not None:
            days = api.last_days(req.last_days)
        else:
            days = api.fetch_range(
                req.start_date or FIRST_DAY,
                req.end_date or dt.date.today(),
                chunk_days=req.chunk_days,
            )
        done = self._done([day.date for day in days])
        summary.days, summary.skipped = len(days), len(done)
        return [
            (day.date, lambda day=day: self._api_day(day)) for day in days if day.date not in done
        ]

    def _write(self, rec: PictureRecord, summary: ScrapeSummary) -> None:
        if self.labeller is not None and rec.title:
            rec.labels = self.labeller.label(rec.title, rec.explanation).to_json()
        self.catalog.upsert(rec)
        if rec.status == OK:
            summary.new += 1
        elif rec.status == "video":
            summary.videos += 1
        elif rec.status == "no_image":
            summary.no_image += 1
        else:
            summary.failed[rec.status] += 1
            log.warning("%s %s: %s: %s", rec.source, rec.date, rec.status, rec.error)

    def run(self, progress: bool = True) -> ScrapeSummary:
        t0 = time.perf_counter()
        summary = ScrapeSummary(self.req.source, self.req.describe())
        tasks = self._tasks(summary)
        bar = progress_bar(
            total=len(tasks), enabled=progress, unit="day", desc=f"scraping {self.req.source}"
        )
        pool = ThreadPoolExecutor(
            max_workers=self.session.max_concurrency, thread_name_prefix="scrape"
        )
        pending: set[Future] = set()
        try:
            it = iter(tasks)
            # a bounded window of submitted days: an interrupt leaves little work in flight
            for _ in range(self.session.max_concurrency * 2):
                nxt = next(it, None)
                if nxt is not None:
                    pending.add(pool.submit(nxt[1]))
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    rec = fut.result()
                    if rec is None:
                        summary.not_started += 1
                    else:
                        self._write(rec, summary)
                    bar.update(1)
                    nxt = next(it, None)
                    if nxt is not None:
                        pending.add(pool.submit(nxt[1]))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            bar.close()
        summary.bytes_downloaded = int(self.session.stats.get("bytes_downloaded", 0))
        summary.requests = int(self.session.stats.get("requests", 0))
        summary.cache_hits = int(self.session.stats.get("cache_hits", 0))
        summary.seconds = time.perf_counter() - t0
        if self.stop.is_set():
            log.warning(
                "the host asked us to stop (rate limit); %d days left for the next run",
                summary.not_started,
            )
        return summary


def scrape(
    req: ScrapeRequest,
    data_dir: str | Path,
    labeller: Labeller | None = None,
    http: Mapping[str, Any] | None = None,
    session: PoliteSession | None = None,
    progress: bool = True,
) -> ScrapeSummary:
    """Fetch the days of ``req`` that the catalog under ``data_dir`` lacks; returns the counts."""
    data_dir = Path(data_dir)
    with scrape_lock(data_dir):
        own = session is None
        session = session or build_session(http, data_dir)
        try:
            with Catalog(catalog_path(data_dir)) as catalog:
                store = ImageStore(data_dir, max_pixels=req.max_pixels, max_bytes=req.max_bytes)
                swept = store.sweep(catalog.referenced_paths())
                summary = _Scraper(req, catalog, store, session, labeller).run(progress=progress)
                summary.swept = swept
                return summary
        finally:
            if own:
                session.close()


__all__ = [
    "HTTP_DEFAULTS",
    "REQUEST_DEFAULTS",
    "ScrapeRequest",
    "ScrapeSummary",
    "build_session",
    "load_defaults",
    "parse_date",
    "scrape",
]
