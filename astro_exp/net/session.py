"""Polite, robust HTTP in one place; every fetch of the project goes through PoliteSession.

Why one place: robots.txt, a per-host rate limit, bounded concurrency, retries with
backoff that honour ``Retry-After``, an on-disk cache of pages with conditional requests and
safe picture downloads must hold for every source, and tests check them once, here. Built on
well-kept libraries: urllib3's ``Retry``, requests-cache and protego.

Network-level rules (robots, rate limit, concurrency, quota) sit in a transport adapter,
so answers served from the cache cost no wait and no request.

Pictures never enter the HTTP cache: :meth:`PoliteSession.download` streams them through a
plain session that shares the same adapter (same rules, same connection pool), so each
picture is stored once, by the caller (the image store). Not fetching a picture twice is the
caller's job: the scraper skips days its catalog has a stored file for.

The parts beside this module: ``http_errors`` (the errors and their one-line messages),
``transport`` (the counting ``Retry`` and the adapter) and ``download`` (header checks and
streaming into a temporary file); their public names are importable from here too.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import requests
from protego import Protego
from urllib3.exceptions import HTTPError as Urllib3Error

from astro_exp import __version__
from astro_exp.net.download import Download, check_headers, save_body
from astro_exp.net.http_errors import (
    DownloadError,
    HttpError,
    RateLimited,
    RobotsDisallowed,
    _host,
    _int_header,
    describe_exception,
    redact,
    status_error,
)
from astro_exp.net.transport import _PoliteAdapter, _Retry

__all__ = [
    "DEFAULT_USER_AGENT",
    "ROBOTS_AGENT",
    "RETRY_STATUSES",
    "Download",
    "DownloadError",
    "HttpError",
    "PoliteSession",
    "RateLimited",
    "RobotsDisallowed",
    "redact",
]

log = logging.getLogger(__name__)

DEFAULT_USER_AGENT = f"astro-exp/{__version__} (+https://github.com/astro-exp/astro-exp)"
ROBOTS_AGENT = "astro-exp"  # the product token robots.txt groups are matched against
RETRY_STATUSES = (429, 500, 502, 503, 504)
T = TypeVar("T")
R = TypeVar("R")


class PoliteSession:
    """HTTP GETs and downloads that are polite to the host and robust to its failures.

    - robots.txt is fetched once per host and honoured (``RobotsDisallowed``), its
      Crawl-delay too;
    - at most ``rate_limit_per_host`` requests per second to one host, at most
      ``max_concurrency`` requests in flight;
    - retries with exponential backoff on 429/5xx, connection errors and timeouts,
      honouring ``Retry-After`` (up to ``max_retry_after`` seconds);
    - an on-disk HTTP cache (requests-cache) in ``cache_dir`` for pages and API answers:
      revalidated with ``If-None-Match`` / ``If-Modified-Since`` so a re-run transfers no
      unchanged page twice; pictures and videos are never cached (:meth:`download`
      bypasses the cache, and an ``image/*`` or ``video/*`` answer to :meth:`get` is not
      stored either): the image store holds the one copy;
    - ``X-RateLimit-Remaining: 0`` stops further requests to that host (``RateLimited``).

    ``stats`` counts requests (sent to the network), bytes_downloaded, cache_hits,
    not_modified (304 revalidations) and retries. Thread-safe: use :meth:`map` or threads.
    """

    def __init__(
        self,
        user_agent: str = DEFAULT_USER_AGENT,
        rate_limit_per_host: float = 1.0,
        max_concurrency: int = 4,
        timeout: float = 20.0,
        retries: int = 4,
        backoff_factor: float = 0.5,
        cache_dir: str | Path | None = None,
        respect_robots: bool = True,
        max_retry_after: float = 120.0,
    ) -> None:
        if rate_limit_per_host <= 0:
            raise ValueError("rate_limit_per_host must be > 0 requests per second")
        self.user_agent = user_agent
        self.rate_limit_per_host = float(rate_limit_per_host)
        self.max_concurrency = max(1, int(max_concurrency))
        self.timeout = timeout
        self.retries = retries
        self.max_retry_after = max_retry_after
        self.respect_robots = respect_robots
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.stats: dict[str, int] = dict.fromkeys(
            ("requests", "bytes_downloaded", "cache_hits", "not_modified", "retries"), 0
        )
        self.rate_remaining: dict[str, int] = {}
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(self.max_concurrency)
        self._next_at: dict[str, float] = {}
        self._crawl_delay: dict[str, float] = {}
        self._robots: dict[str, tuple[Protego | None, str | None, float]] = {}
        self._robots_locks: dict[str, threading.Lock] = {}

        retry = _Retry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            other=0,
            backoff_factor=backoff_factor,
            backoff_max=60.0,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset({"GET", "HEAD"}),
            respect_retry_after_header=True,
            raise_on_status=False,
            max_retry_after=max_retry_after,
            on_retry=lambda: self._bump("retries"),
        )
        if self.cache_dir is not None:
            import requests_cache

            self.cache_dir.mkdir(parents=True, exist_ok=True)
            self._http: requests.Session = requests_cache.CachedSession(
                cache_name=str(self.cache_dir),
                backend="filesystem",
                serializer="pickle",
                decode_content=False,  # keep bodies byte-exact (APOD pages hold stray Latin-1 bytes)
                expire_after=requests_cache.EXPIRE_IMMEDIATELY,
                cache_control=True,
                stale_if_error=True,
                allowable_methods=("GET", "HEAD"),
                filter_fn=self._cacheable,
            )
        else:
            self._http = requests.Session()
        # pictures: streamed past the cache, through the same adapter (rules, pool)
        self._direct = requests.Session() if self.cache_dir is not None else self._http
        adapter = _PoliteAdapter(
            self, max_retries=retry, pool_connections=8, pool_maxsize=self.max_concurrency
        )
        for http in [self._http] if self._direct is self._http else [self._http, self._direct]:
            http.mount("http://", adapter)
            http.mount("https://", adapter)
            http.headers["User-Agent"] = user_agent

    # ------------------------------------------------------------------ public API
    def get(
        self,
        url: str,
        *,
        check: bool = True,
        fresh: bool = False,
        cache: bool = True,
        **kw: Any,
    ) -> requests.Response:
        """GET ``url`` politely; raises :class:`HttpError` (one line) unless it ends in 2xx/3xx.

        ``check=False`` returns error responses instead of raising. ``fresh=True``
        revalidates a cached copy even if the server called it fresh (for pages that change
        daily, like the site root). ``cache=False`` goes past the on-disk cache (neither
        read nor written; what :meth:`download` does). Other keywords go to ``requests``
        (``stream``, ``headers``, ``params``, ``timeout``).
        """
        kw.setdefault("timeout", self.timeout)
        http = self._http if cache else self._direct
        if fresh and cache and self.cache_dir is not None:
            kw["refresh"] = True
        if self.respect_robots and urlsplit(url).path != "/robots.txt":
            self._check_robots(url)  # here too, so a cached copy cannot mask a disallow
        try:
            resp = http.get(url, **kw)
        except HttpError:
            raise
        except (requests.RequestException, Urllib3Error) as exc:  # requests-cache reads raw bodies
            raise HttpError(self._describe_exception(exc, url), url=url) from exc
        if getattr(resp, "from_cache", False):
            self._bump("cache_hits")
            if getattr(resp, "revalidated", False):
                self._bump("not_modified")
        elif not kw.get("stream"):
            self._bump("bytes_downloaded", len(resp.content))
        if check and resp.status_code >= 400:
            resp.close()
            raise self._status_error(resp, url)
        return resp

    def download(
        self,
        url: str,
        dest_dir: str | Path,
        max_bytes: int = 50_000_000,
        allowed_types: tuple[str, ...] = ("image/",),
    ) -> Download:
        """Stream ``url`` into a temporary file in ``dest_dir``; check type, size and completeness.

        Always from the network: the HTTP cache is neither read nor written (the caller
        keeps the file; a second copy in the cache would double the disk use). Raises
        :class:`DownloadError` (one line) for HTTP errors, a Content-Type not starting with
        one of ``allowed_types``, more than ``max_bytes`` (aborted as soon as
        Content-Length or the stream shows it) and truncated bodies. On error no temporary
        file is left behind.
        """
        dest = Path(dest_dir)
        dest.mkdir(parents=True, exist_ok=True)
        try:
            resp = self.get(url, stream=True, check=False, cache=False)
        except RobotsDisallowed:
            raise
        except HttpError as exc:
            raise DownloadError(str(exc), url=url, status=exc.status) from exc
        with resp:
            if resp.status_code >= 400:
                err = self._status_error(resp, url)
                raise DownloadError(str(err), url=url, status=resp.status_code)
            ctype, length, encoded = check_headers(resp, url, allowed_types, max_bytes)
            tmp, sha256, size = save_body(resp, url, dest, max_bytes, length, encoded)
        self._bump("bytes_downloaded", size)
        return Download(tmp, sha256, size, ctype, url)

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        """``fn`` over ``items`` on ``max_concurrency`` threads, results in order."""
        with ThreadPoolExecutor(max_workers=self.max_concurrency) as pool:
            yield from pool.map(fn, items)

    def close(self) -> None:
        """Close pooled connections (and the cache's files)."""
        self._http.close()
        if self._direct is not self._http:
            self._direct.close()

    def __enter__(self) -> PoliteSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ transport rules
    def _send(
        self, send: Callable[..., requests.Response], request: requests.PreparedRequest, **kw: Any
    ) -> requests.Response:
        url = request.url or ""
        host = _host(url)
        is_robots = urlsplit(url).path == "/robots.txt"
        if self.respect_robots and not is_robots:
            self._check_robots(url)  # every hop, redirects included
        remaining = self.rate_remaining.get(host)
        if remaining is not None and remaining <= 0:
            raise RateLimited(
                f"{host} says our request quota is used up (X-RateLimit-Remaining: 0);"
                " wait for it to refill (about an hour for api.nasa.gov) or use your own NASA_API_KEY",
                url=url,
            )
        with self._slots:
            self._throttle(host)
            self._bump("requests")
            resp = send(request, **kw)
        value = _int_header(resp.headers.get("X-RateLimit-Remaining"))
        if value is not None:
            with self._lock:
                self.rate_remaining[host] = value
        return resp

    def _throttle(self, host: str) -> None:
        interval = max(1.0 / self.rate_limit_per_host, self._crawl_delay.get(host, 0.0))
        with self._lock:
            now = time.monotonic()
            at = max(now, self._next_at.get(host, 0.0))
            self._next_at[host] = at + interval
        if at > now:
            time.sleep(at - now)

    def _check_robots(self, url: str) -> None:
        parts = urlsplit(url)
        key = f"{parts.scheme}://{parts.netloc}".lower()
        with self._lock:
            lock = self._robots_locks.setdefault(key, threading.Lock())
        with lock:
            cached = self._robots.get(key)
            if cached is None or (cached[1] is not None and time.monotonic() - cached[2] > 30):
                cached = self._load_robots(key)
                self._robots[key] = cached
        rules, problem, _ = cached
        if problem is not None:
            raise RobotsDisallowed(problem, url=url)
        if rules is not None and not rules.can_fetch(url, ROBOTS_AGENT):
            raise RobotsDisallowed(
                f"robots.txt of {parts.netloc} disallows {redact(url)}; do not fetch it"
                " (or use another mirror with base_url)",
                url=url,
            )

    def _load_robots(self, key: str) -> tuple[Protego | None, str | None, float]:
        robots_url = urlunsplit((*urlsplit(key)[:2], "/robots.txt", "", ""))
        now = time.monotonic()
        try:
            resp = self.get(robots_url, check=False)
        except HttpError as exc:
            return (
                None,
                f"robots.txt of {urlsplit(key).netloc} is unreachable ({exc}); try again later",
                now,
            )
        if resp.status_code >= 500:
            return (
                None,
                (
                    f"robots.txt of {urlsplit(key).netloc} answers HTTP {resp.status_code};"
                    " the host is in trouble, try again later"
                ),
                now,
            )
        if resp.status_code >= 400:  # RFC 9309: no robots.txt means no restrictions
            return None, None, now
        rules = Protego.parse(resp.content.decode("utf-8", errors="replace"))
        delay = rules.crawl_delay(ROBOTS_AGENT)
        if delay:
            self._crawl_delay[urlsplit(key).netloc.lower()] = min(float(delay), 60.0)
        return rules, None, now

    @staticmethod
    def _cacheable(response: requests.Response) -> bool:
        """requests-cache filter: pages and API answers yes, pictures and videos never.

        :meth:`download` does not go through the cache at all; this keeps a picture fetched
        with :meth:`get` out of it too (the image store is the one place for picture bytes).
        """
        ctype = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        return not ctype.startswith(("image/", "video/", "audio/"))

    # ------------------------------------------------------------------ helpers
    def _bump(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.stats[key] = self.stats.get(key, 0) + n

    def _status_error(self, resp: requests.Response, url: str) -> HttpError:
        return status_error(resp, url, self.retries, self.max_retry_after)

    def _describe_exception(self, exc: Exception, url: str) -> str:
        return describe_exception(exc, url, self.retries, self.timeout)
