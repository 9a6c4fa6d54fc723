"""Scrape APOD days into the catalog and image store, resumably.

Why it is safe to kill at any point: every day is one catalog transaction written after
its picture is already in the store (downloaded to a temporary file, fsynced, decoded,
renamed); a day with status "ok" (or a recorded video) is never fetched again; and the
next run first sweeps temporary files and store files without a row. So a re-run
finishes the range with no duplicate rows and no partial files, and a re-run of a
finished range sends no picture request at all.

Network work (pages, pictures) runs on the session's ``max_concurrency`` threads; all
catalog writes happen on the calling thread.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from astro_exp.apod.api import ApodApiClient
from astro_exp.apod.client import ApodClient
from astro_exp.apod.pages import ApodDay, NotAnApodPage
from astro_exp.apod.text import FIRST_DAY
from astro_exp.data.catalog import DONE_STATUSES, OK, Catalog, PictureRecord, catalog_path, now_iso
from astro_exp.data.labels import Labeller
from astro_exp.data.store import ImageStore
from astro_exp.errors import ConfigError, DataError
from astro_exp.imageio import BadImage
from astro_exp.net.session import DownloadError, HttpError, PoliteSession, RateLimited
from astro_exp.progress import progress as progress_bar

log = logging.getLogger(__name__)

LOCK_FILE = ".scrape.lock"
CONF_FILE = "source/apod.yaml"  # in conf/, the package astro_exp.conf (a wheel has it too)
# keys of conf/source/apod.yaml that are scrape settings -> ScrapeRequest fields
_REQUEST_KEYS = {
    "name": "source",
    "kind": "kind",
    "base_url": "base_url",
    "api_url": "api_url",
    "api_key": "api_key",
    "start_date": "start_date",
    "end_date": "end_date",
    "last_days": "last_days",
    "picture": "picture",
    "max_bytes": "max_bytes",
    "max_pixels": "max_pixels",
    "chunk_days": "chunk_days",
}


def parse_date(value: Any, name: str) -> dt.date | None:
    """A config date (``2024-01-01``; YAML may already have made it a date) or None."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not a date; write it as YYYY-MM-DD") from None


def load_defaults(conf_file: str | Path | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The scrape settings' defaults as ``conf/source/apod.yaml`` writes them: (request, http).

    Why read the YAML: it is the one place these defaults live, so ``ScrapeRequest()``,
    ``ApodCatalogSource()`` and ``scripts/scrape.py source=apod`` cannot drift apart. The
    request part is keyed by :class:`ScrapeRequest` field (``name`` becomes ``source``); http
    values that are interpolations (``${paths.data_dir}/http_cache``) are left out, they only
    mean something inside a composed config (:func:`build_session` has its own cache rule).
    """
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from astro_exp.config import read_conf

    try:
        # the package's conf/source/apod.yaml, unless a file is given (tests)
        text = (
            read_conf(CONF_FILE)
            if conf_file is None
            else Path(conf_file).read_text(encoding="utf-8")
        )
        raw = OmegaConf.to_container(OmegaConf.create(text), resolve=False)
    except (OmegaConfBaseException, OSError) as e:
        raise ConfigError(
            f"cannot read the scrape defaults ({e}); check {conf_file or 'conf/' + CONF_FILE}"
        ) from None
    missing = sorted(set(_REQUEST_KEYS) - set(raw if isinstance(raw, dict) else {}))
    if missing:
        raise ConfigError(
            f"{conf_file or 'conf/' + CONF_FILE} lacks the scrape settings {missing}; put them back"
        )
    assert isinstance(raw, dict)  # not missing keys, so a mapping
    request = {field_name: raw[key] for key, field_name in _REQUEST_KEYS.items()}
    for key in ("start_date", "end_date"):
        request[key] = parse_date(request[key], f"source.{key}")
    http = {
        k: v
        for k, v in dict(raw.get("http") or {}).items()
        if not (isinstance(v, str) and "${" in v)
    }
    return request, http


_request_defaults, _http_defaults = load_defaults()
REQUEST_DEFAULTS: Mapping[str, Any] = MappingProxyType(_request_defaults)
HTTP_DEFAULTS: Mapping[str, Any] = MappingProxyType(_http_defaults)


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


@dataclass
class ScrapeRequest:
    """What to scrape: one source's days (a date range or the newest ``last_days``).

    The defaults are ``conf/source/apod.yaml``'s (:data:`REQUEST_DEFAULTS`), never written here.
    """

    source: str = REQUEST_DEFAULTS["source"]  # catalog source name; (source, date) is the row key
    kind: str = REQUEST_DEFAULTS["kind"]  # html: the web site's pages | api: api.nasa.gov JSON
    base_url: str = REQUEST_DEFAULTS["base_url"]
    api_url: str = REQUEST_DEFAULTS["api_url"]
    api_key: str | None = REQUEST_DEFAULTS["api_key"]  # None: $NASA_API_KEY, else DEMO_KEY
    start_date: dt.date | None = REQUEST_DEFAULTS["start_date"]
    end_date: dt.date | None = REQUEST_DEFAULTS["end_date"]
    last_days: int | None = REQUEST_DEFAULTS["last_days"]
    picture: str = REQUEST_DEFAULTS["picture"]  # image: the page's picture | hd: the full-size file
    max_bytes: int = REQUEST_DEFAULTS["max_bytes"]
    max_pixels: int = REQUEST_DEFAULTS["max_pixels"]
    chunk_days: int = REQUEST_DEFAULTS["chunk_days"]

    def __post_init__(self) -> None:
        if self.kind not in ("html", "api"):
            raise ConfigError(f"source.kind={self.kind!r} must be html or api")
        if self.picture not in ("image", "hd"):
            raise ConfigError(f"source.picture={self.picture!r} must be image or hd")
        if self.last_days is None and self.start_date is None and self.end_date is None:
            raise ConfigError(
                "say which days to scrape: source.last_days=30, or source.start_date=2024-01-01 "
                "source.end_date=2024-12-31"
            )
        if self.last_days is not None and (self.start_date or self.end_date):
            raise ConfigError(
                "give either source.last_days or source.start_date/end_date, not both"
            )
        if self.start_date and self.end_date and self.start_date > self.end_date:
            raise ConfigError(
                f"source.start_date {self.start_date} is after source.end_date {self.end_date}; swap them"
            )

    def describe(self) -> str:
        if self.last_days is not None:
            return f"last {self.last_days} days"
        return f"{self.start_date or '...'}..{self.end_date or 'newest'}"


@dataclass
class ScrapeSummary:
    """Counts of one scrape run; ``line()`` is what the script prints at the end."""

    source: str
    span: str
    days: int = 0
    new: int = 0  # pictures stored by this run
    skipped: int = 0  # days done by an earlier run
    videos: int = 0
    no_image: int = 0
    failed: Counter = field(default_factory=Counter)  # status -> count
    not_started: int = 0  # left for the next run (rate limit, interrupt)
    bytes_downloaded: int = 0
    requests: int = 0
    cache_hits: int = 0
    seconds: float = 0.0
    swept: tuple[int, int] = (0, 0)

    @property
    def n_failed(self) -> int:
        return sum(self.failed.values())

    def line(self) -> str:
        failed = f"{self.n_failed} failed"
        if self.failed:
            failed += " (" + ", ".join(f"{k} {v}" for k, v in sorted(self.failed.items())) + ")"
        parts = [
            f"{self.new} new",
            f"{self.skipped} skipped (done before)",
            _plural(self.videos, "video"),
            f"{self.no_image} without picture",
            failed,
        ]
        if self.not_started:
            parts.append(f"{self.not_started} not started")
        tail = (
            f"{_human_bytes(self.bytes_downloaded)} in {_plural(self.requests, 'request')} "
            f"({self.cache_hits} from cache), {self.seconds:.1f} s"
        )
        hint = "; run again to retry the failed days" if self.failed or self.not_started else ""
        return (
            f"{self.source} {self.span}: {_plural(self.days, 'day')}: "
            + ", ".join(parts)
            + f"; {tail}{hint}"
        )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _human_bytes(n: int) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def build_session(http: Mapping[str, Any] | None, data_dir: str | Path) -> PoliteSession:
    """A PoliteSession from ``source.http`` (cache under ``data_dir/http_cache`` unless set)."""
    opts = {**HTTP_DEFAULTS, **{k: v for k, v in dict(http or {}).items() if v is not None}}
    opts.setdefault("cache_dir", Path(data_dir) / "http_cache")
    if opts.get("cache_dir") in ("", False):
        opts["cache_dir"] = None
    allowed = {
        "user_agent",
        "rate_limit_per_host",
        "max_concurrency",
        "timeout",
        "retries",
        "backoff_factor",
        "cache_dir",
        "respect_robots",
        "max_retry_after",
    }
    unknown = set(opts) - allowed
    if unknown:
        raise ConfigError(
            f"unknown source.http settings {sorted(unknown)}; known: {sorted(allowed)}"
        )
    return PoliteSession(**opts)


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


class _Scraper:
    """One run: resolves the days, fetches what is missing, writes rows as days finish."""

    def __init__(
        self,
        req: ScrapeRequest,
        catalog: Catalog,
        store: ImageStore,
        session: PoliteSession,
        labeller: Labeller | None,
    ) -> None:
        self.req = req
        self.catalog = catalog
        self.store = store
        self.session = session
        self.labeller = labeller
        self.stop = threading.Event()

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
