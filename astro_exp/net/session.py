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
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import requests
from protego import Protego
from requests.adapters import HTTPAdapter
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import MaxRetryError, ResponseError
from urllib3.util.retry import Retry

from astro_exp import __version__
from astro_exp.errors import AstroExpError

log = logging.getLogger(__name__)

DEFAULT_USER_AGENT = f"astro-exp/{__version__} (+https://github.com/astro-exp/astro-exp)"
ROBOTS_AGENT = "astro-exp"  # the product token robots.txt groups are matched against
RETRY_STATUSES = (429, 500, 502, 503, 504)
T = TypeVar("T")
R = TypeVar("R")


class HttpError(AstroExpError):
    """A request failed for good (after retries); the message is one line that says what to do."""

    def __init__(self, message: str, url: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.status = status


class DownloadError(HttpError):
    """A picture could not be downloaded safely (missing, wrong type, too big, cut off)."""


class RobotsDisallowed(HttpError):
    """robots.txt of the host forbids this URL to us."""


class RateLimited(HttpError):
    """The host says our quota is used up (HTTP 429 after retries, X-RateLimit-Remaining: 0)."""


@dataclass(frozen=True)
class Download:
    """A downloaded file at a temporary ``path`` in the destination folder.

    The caller moves it into place (``os.replace``) or deletes it; it is fsynced already.
    """

    path: Path
    sha256: str
    size: int
    content_type: str
    url: str


def redact(url: str) -> str:
    """A URL safe for logs and messages: API keys hidden."""
    return re.sub(r"(?i)(api_key|apikey|key|token)=[^&]*", r"\1=***", url)


def _host(url: str) -> str:
    return urlsplit(url).netloc.lower()


class _Retry(Retry):
    """urllib3 Retry that counts retries and gives up (instead of sleeping) on a huge Retry-After."""

    def __init__(
        self,
        *args: Any,
        max_retry_after: float = 120.0,
        on_retry: Callable[[], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.max_retry_after = max_retry_after
        self.on_retry = on_retry

    def new(self, **kw: Any) -> _Retry:
        new = super().new(**kw)
        new.max_retry_after = self.max_retry_after
        new.on_retry = self.on_retry
        return new

    def increment(
        self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None
    ):  # type: ignore[no-untyped-def,override]
        if response is not None and self.respect_retry_after_header:
            wait = self.get_retry_after(response)
            if wait is not None and wait > self.max_retry_after:
                raise MaxRetryError(
                    _pool, url, ResponseError(f"Retry-After {wait:.0f} s is too long")
                )
        new = super().increment(method, url, response, error, _pool, _stacktrace)
        if self.on_retry is not None:
            self.on_retry()
        return new


class _PoliteAdapter(HTTPAdapter):
    """Transport adapter: the network-level rules of PoliteSession wrap every real send."""

    def __init__(self, owner: PoliteSession, **kwargs: Any) -> None:
        self._owner = owner
        super().__init__(**kwargs)

    def send(self, request, **kwargs):  # type: ignore[no-untyped-def,override]
        return self._owner._send(super().send, request, **kwargs)


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
            ctype = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if not any(ctype.startswith(t) for t in allowed_types):
                raise DownloadError(
                    f"{redact(url)} is {ctype or 'of no stated type'}, not {' or '.join(allowed_types)};"
                    " the link does not point at a picture, skip it or fix the URL",
                    url=url,
                )
            length = _int_header(resp.headers.get("Content-Length"))
            if length is not None and length > max_bytes:
                raise DownloadError(
                    f"{redact(url)} is {length:,} bytes, over the {max_bytes:,}-byte limit;"
                    " raise max_bytes to accept it",
                    url=url,
                )
            encoded = resp.headers.get("Content-Encoding", "identity").lower() not in (
                "",
                "identity",
            )
            fd, tmp_name = tempfile.mkstemp(dir=dest, prefix=".download-", suffix=".part")
            tmp = Path(tmp_name)
            size = 0
            digest = hashlib.sha256()
            try:
                with os.fdopen(fd, "wb") as fh:
                    for chunk in resp.iter_content(chunk_size=1 << 16):
                        size += len(chunk)
                        if size > max_bytes:
                            raise DownloadError(
                                f"{redact(url)} sent more than {max_bytes:,} bytes; aborted,"
                                " raise max_bytes to accept it",
                                url=url,
                            )
                        digest.update(chunk)
                        fh.write(chunk)
                    fh.flush()
                    os.fsync(fh.fileno())
                if length is not None and not encoded and size != length:
                    raise DownloadError(self._truncated(url, size, length), url=url)
            except DownloadError:
                tmp.unlink(missing_ok=True)
                raise
            except (requests.RequestException, Urllib3Error, OSError) as exc:
                tmp.unlink(missing_ok=True)
                if isinstance(exc, OSError) and not isinstance(exc, requests.RequestException):
                    raise DownloadError(
                        f"cannot write {redact(url)} into {dest}: {exc.strerror or exc}; free disk space or fix permissions",
                        url=url,
                    ) from exc
                raise DownloadError(self._truncated(url, size, length), url=url) from exc
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
        self._bump("bytes_downloaded", size)
        return Download(tmp, digest.hexdigest(), size, ctype, url)

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
        code = resp.status_code
        host = _host(url)
        where = redact(url)
        if code == 404:
            return HttpError(f"{where} not found (HTTP 404); check the date or base_url", url, code)
        wait = _int_header(resp.headers.get("Retry-After"))
        if code in (429, 503) and wait is not None and wait > self.max_retry_after:
            return RateLimited(
                f"{host} asks us to wait {wait} s (Retry-After), longer than max_retry_after;"
                " try again later",
                url,
                code,
            )
        if code == 429:
            return RateLimited(
                f"{host} keeps answering 429 Too Many Requests after {self.retries} retries;"
                " wait a while (or lower rate_limit_per_host) and run again",
                url,
                code,
            )
        if code in (401, 403):
            return HttpError(
                f"{host} refused {where} (HTTP {code}); check the API key or that the URL is public",
                url,
                code,
            )
        if code >= 500:
            return HttpError(
                f"{host} failed with HTTP {code} after {self.retries} retries; try again later",
                url,
                code,
            )
        return HttpError(f"GET {where} failed with HTTP {code}; check the URL", url, code)

    def _describe_exception(self, exc: Exception, url: str) -> str:
        text = str(exc)
        where = redact(url)
        if isinstance(exc, requests.Timeout) or "timed out" in text.lower():
            return (
                f"{where} timed out after {self.retries} retries ({self.timeout:g} s each);"
                " check the connection or raise the timeout"
            )
        if "IncompleteRead" in text or isinstance(exc, requests.exceptions.ChunkedEncodingError):
            return f"{where} was cut off mid-transfer; run again to retry"
        if "Retry-After" in text:
            return f"{_host(url)} asks us to wait too long (Retry-After); try again later"
        if isinstance(exc, requests.exceptions.RetryError):
            return f"{_host(url)} kept failing after {self.retries} retries; try again later"
        if isinstance(exc, requests.ConnectionError):
            return f"cannot connect to {_host(url)} for {where}; check the network and base_url"
        return f"GET {where} failed ({type(exc).__name__}); check the URL"

    @staticmethod
    def _truncated(url: str, size: int, length: int | None) -> str:
        of = f" of {length:,}" if length is not None else ""
        return f"{redact(url)} was cut off after {size:,}{of} bytes (truncated body); run again to retry"


def _int_header(value: str | None) -> int | None:
    try:
        return int(str(value).strip()) if value is not None else None
    except ValueError:
        return None
