"""A local stand-in for apod.nasa.gov and api.nasa.gov, for tests, benchmarks and offline demos.

A real HTTP server on 127.0.0.1 (``ThreadingHTTPServer`` in a thread) that serves site
trees laid out like the real site (``apod/apYYMMDD.html``, ``apod/image/...``,
``apod.rss``), an APOD API endpoint built from the same day pages, ``/robots.txt``,
``ETag``/``Last-Modified`` with 304 answers, and injected faults (429 with Retry-After,
5xx, slow answers, truncated bodies, wrong content-type, oversized pictures, 404,
dropped connections) so every failure path of the scraper can be tested without the
internet. ``latency`` delays every answer (a far-away host, for benchmarks) and ``totals()``
sums up what was served; :func:`astro_exp.apod.site_gen.write_site` generates a site of any
number of days to serve.

Why in the package: the scraper's benchmark (``astro-exp bench-scrape``) runs over it as the
tests do, and the package never imports ``tests/``. This module holds the server's state
(sites, faults, logs); :mod:`astro_exp.apod.standin_http` how it answers a request.
``python -m tests.support.standin --port 8000`` serves the checkout's fixture site for demos.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from astro_exp.apod.pages import NotAnApodPage, parse_day
from astro_exp.apod.standin_http import (
    API_PATH,
    CONTENT_TYPES,
    day_to_api_item,
    make_handler,
    parse_api_date,
)

FAULT_KINDS = (
    "429",
    "500",
    "502",
    "503",
    "404",
    "slow",
    "truncate",
    "wrong_type",
    "oversize",
    "no_length",
    "reset",
)
DEFAULT_ROBOTS = "User-agent: *\nDisallow: /cgi-bin/\n"


@dataclass
class Fault:
    """One injected misbehaviour for a path; ``times=None`` means every request."""

    kind: str
    times: int | None = None
    retry_after: float = 1.0
    delay: float = 1.0
    size: int = 2_000_000
    declare_length: bool = True


@dataclass
class Faults:
    """Per-path fault rules, consumed in order; settable while the server runs."""

    rules: dict[str, list[Fault]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def add(self, path: str, kind: str, times: int | None = None, **opts: Any) -> Faults:
        """Inject ``kind`` (one of FAULT_KINDS) for requests to ``path`` (no query string)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; use one of {', '.join(FAULT_KINDS)}")
        with self._lock:
            self.rules.setdefault(path, []).append(Fault(kind, times, **opts))
        return self

    def clear(self, path: str | None = None) -> None:
        """Drop the rules of ``path`` (all rules when None)."""
        with self._lock:
            if path is None:
                self.rules.clear()
            else:
                self.rules.pop(path, None)

    def take(self, path: str) -> Fault | None:
        """The fault to apply to this request, counting it as used."""
        with self._lock:
            queue = self.rules.get(path, [])
            while queue:
                f = queue[0]
                if f.times is None:
                    return f
                if f.times > 0:
                    f.times -= 1
                    if f.times == 0:
                        queue.pop(0)
                    return f
                queue.pop(0)
        return None


class ApodStandin:
    """The stand-in server; use as a context manager (or ``start()``/``stop()``).

    ``site_dirs`` are site roots (holding ``apod/``), searched in order for each path.
    ``api_items`` are raw API items (e.g. with real-world quirks) served by the API in
    place of, or beside, the items built from the day pages. ``requests_log`` records
    ``(method, path, status, body_bytes)`` of every answer; :meth:`totals` sums it up.
    ``latency`` (seconds, settable while serving) delays every answer, like a round trip
    to a far-away host.
    """

    def __init__(
        self,
        site_dirs: Iterable[Path],
        faults: Faults | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        robots_txt: str = DEFAULT_ROBOTS,
        api_items: Iterable[dict] | None = None,
        api_quota: int = 1000,
        today: dt.date | None = None,
        latency: float = 0.0,
    ) -> None:
        if latency < 0:
            raise ValueError(f"latency must be >= 0 seconds, got {latency}")
        self.latency = float(latency)
        self.site_dirs = [Path(p) for p in site_dirs]
        self.faults = faults or Faults()
        self.robots_txt = robots_txt
        self.api_quota = api_quota
        self.requests_log: list[tuple[str, str, int, int]] = []
        self.request_headers: list[tuple[str, dict[str, str]]] = []  # (path, headers) as received
        self._extra_items = list(api_items or [])
        self._today = today
        self._api_days: dict[dt.date, dict] | None = None
        self._quota_used: dict[str, int] = {}
        # requests inside a ``slow`` fault's wait now, and the most at once (a client's bound)
        self.slow_in_flight = 0
        self.slow_peak = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), make_handler(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None
        h, p = self._server.server_address[:2]
        self.root_url = f"http://{h}:{p}"
        self.base_url = f"{self.root_url}/apod/"
        self.api_url = f"{self.root_url}{API_PATH}"

    # -- lifecycle
    def start(self) -> ApodStandin:
        """Serve in a background thread."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="apod-standin",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> ApodStandin:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- test helpers
    def fault(self, path: str, kind: str, times: int | None = None, **opts: Any) -> None:
        """Inject a fault at runtime, e.g. ``fault("/apod/image/x.jpg", "500", times=2)``."""
        self.faults.add(path, kind, times, **opts)

    def hits(self, path: str) -> list[tuple[str, str, int, int]]:
        """Logged answers for ``path`` (query string ignored)."""
        with self._lock:
            return [e for e in self.requests_log if e[1].split("?")[0] == path]

    def totals(self, since: int = 0) -> dict[str, int]:
        """Sums over the logged answers from ``requests_log[since]`` on.

        ``requests``, ``bytes`` (bodies sent), ``not_modified`` (304 answers), and
        ``pictures`` / ``picture_bytes``: 200 answers whose file type is an image. Pass
        ``len(requests_log)`` taken before a phase to count that phase alone.
        """
        with self._lock:
            entries = self.requests_log[since:]
        out = dict.fromkeys(("requests", "bytes", "not_modified", "pictures", "picture_bytes"), 0)
        for _, path, status, nbytes in entries:
            out["requests"] += 1
            out["bytes"] += nbytes
            out["not_modified"] += status == 304
            suffix = Path(urlsplit(path).path).suffix.lower()
            if status == 200 and CONTENT_TYPES.get(suffix, "").startswith("image/"):
                out["pictures"] += 1
                out["picture_bytes"] += nbytes
        return out

    def slow_wait(self, delay: float) -> None:
        """A ``slow`` fault's wait, counted in ``slow_in_flight`` / ``slow_peak``."""
        with self._lock:
            self.slow_in_flight += 1
            self.slow_peak = max(self.slow_peak, self.slow_in_flight)
        try:
            time.sleep(delay)
        finally:
            with self._lock:
                self.slow_in_flight -= 1

    def clear_log(self) -> None:
        """Forget logged requests (between phases of a test)."""
        with self._lock:
            self.requests_log.clear()
            self.request_headers.clear()

    @property
    def today(self) -> dt.date:
        """The stand-in's "today": the newest day it serves (API dates after it are rejected)."""
        if self._today is not None:
            return self._today
        days = self.api_days()
        return max(days) if days else dt.date.today()

    def api_days(self) -> dict[dt.date, dict]:
        """{date: raw API item}: day pages of the site trees, then ``api_items`` on top."""
        with self._lock:
            if self._api_days is None:
                days: dict[dt.date, dict] = {}
                for root in self.site_dirs:
                    folder = root / "apod"
                    pages = sorted(folder.glob("ap[0-9][0-9][0-9][0-9][0-9][0-9].html"))
                    pages += [folder / n for n in ("astropix.html", "index.html")]
                    for page in pages:
                        if not page.is_file():
                            continue
                        try:
                            day = parse_day(page.read_bytes(), self.base_url + page.name)
                        except NotAnApodPage:
                            continue
                        days.setdefault(day.date, day_to_api_item(day, thumbs=True))
                for item in self._extra_items:
                    d = parse_api_date(str(item.get("date", "")))
                    if d is not None:
                        days[d] = item
                self._api_days = days
            return self._api_days

    # -- request handling (called from handler threads)
    def _log(self, method: str, path: str, status: int, nbytes: int) -> int:
        with self._lock:
            self.requests_log.append((method, path, status, nbytes))
            return len(self.requests_log) - 1

    def _relog(self, index: int, entry: tuple[str, str, int, int]) -> None:
        with self._lock:
            if index < len(self.requests_log):
                self.requests_log[index] = entry

    def _find_file(self, path: str) -> Path | None:
        rel = unquote(path).lstrip("/")
        if ".." in Path(rel).parts:
            return None
        candidates = [rel]
        if rel == "" or rel.endswith("/"):
            candidates = [rel + "index.html", rel + "astropix.html"]
        elif rel.endswith("astropix.html"):
            candidates.append(rel[: -len("astropix.html")] + "index.html")
        for root in self.site_dirs:
            for c in candidates:
                f = root / c
                if f.is_file():
                    return f
        return None

    def _count_api_call(self, key: str) -> int:
        """Count one API request with ``key``; how many it has made so far."""
        with self._lock:
            used = self._quota_used.get(key, 0) + 1
            self._quota_used[key] = used
        return used
