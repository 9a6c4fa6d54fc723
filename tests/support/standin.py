"""A local stand-in for apod.nasa.gov and api.nasa.gov, for tests and offline demos.

A real HTTP server on 127.0.0.1 (``ThreadingHTTPServer`` in a thread) that serves site
trees laid out like the real site (``apod/apYYMMDD.html``, ``apod/image/...``,
``apod.rss``), an APOD API endpoint built from the same day pages, ``/robots.txt``,
``ETag``/``Last-Modified`` with 304 answers, and injected faults (429 with Retry-After,
5xx, slow answers, truncated bodies, wrong content-type, oversized pictures, 404,
dropped connections) so every failure path of the scraper can be tested without the
internet. ``latency`` delays every answer (a far-away host, for benchmarks) and ``totals()``
sums up what was served; :func:`tests.support.apod_site.write_site` generates a site of any
number of days to serve.
Run ``python -m tests.support.standin --port 8000`` for a demo server.
"""

from __future__ import annotations

import argparse
import datetime as dt
import email.utils
import hashlib
import json
import logging
import random
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from astro_exp.apod.pages import ApodDay, NotAnApodPage, parse_day
from astro_exp.apod.text import youtube_thumbnail
from tests.support.apod_site import SHARED_SITE, default_site_dirs

log = logging.getLogger(__name__)

API_PATH = "/planetary/apod"
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
CONTENT_TYPES = {
    ".html": "text/html; charset=UTF-8",
    ".htm": "text/html; charset=UTF-8",
    ".rss": "application/rss+xml",
    ".xml": "application/xml",
    ".json": "application/json",
    ".txt": "text/plain; charset=UTF-8",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
}
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


def day_to_api_item(day: ApodDay, thumbs: bool = False) -> dict[str, Any]:
    """An APOD API response item for ``day``, shaped like api.nasa.gov's (apod-api v1).

    As the real service does: HTML5 ``<video>`` days are ``media_type: other`` without
    ``url``; ``hdurl`` only for pictures; ``copyright`` only when the credit names owners;
    ``thumbnail_url`` only with ``thumbs`` (YouTube thumbnail, else "").
    """
    item: dict[str, Any] = {
        "date": day.date.isoformat(),
        "explanation": day.explanation,
        "media_type": day.media_type,
        "service_version": "v1",
        "title": day.title,
    }
    url = day.image_url or ""
    is_html5_video = day.media_type == "video" and url.split("?")[0].lower().endswith(
        (".mp4", ".webm", ".mov", ".m4v", ".ogv")
    )
    if is_html5_video or (day.media_type == "other"):
        item["media_type"] = "other"
    elif url:
        item["url"] = url
        if day.media_type == "image" and day.hd_url:
            item["hdurl"] = day.hd_url
        if day.media_type == "video" and thumbs:
            item["thumbnail_url"] = youtube_thumbnail(url) or ""
    if day.copyright:
        item["copyright"] = day.copyright
    return item


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
        site_dirs: Iterable[Path] | None = None,
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
        self.site_dirs = [
            Path(p) for p in (site_dirs if site_dirs is not None else default_site_dirs())
        ]
        self.faults = faults or Faults()
        self.robots_txt = robots_txt
        self.api_quota = api_quota
        self.requests_log: list[tuple[str, str, int, int]] = []
        self.request_headers: list[tuple[str, dict[str, str]]] = []  # (path, headers) as received
        self._extra_items = list(api_items or [])
        self._today = today
        self._api_days: dict[dt.date, dict] | None = None
        self._quota_used: dict[str, int] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), _make_handler(self))
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
                    d = _parse_api_date(str(item.get("date", "")))
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

    def _api(self, query: dict[str, list[str]]) -> tuple[int, dict[str, str], bytes]:
        def one(name: str) -> str | None:
            vals = query.get(name)
            return vals[0] if vals else None

        key = one("api_key")
        if not key:
            return _json(
                403,
                {
                    "error": {
                        "code": "API_KEY_MISSING",
                        "message": "No api_key was supplied. Get one at https://api.nasa.gov:443",
                    }
                },
            )
        with self._lock:
            used = self._quota_used.get(key, 0) + 1
            self._quota_used[key] = used
        remaining = max(self.api_quota - used, 0)
        headers = {
            "X-RateLimit-Limit": str(self.api_quota),
            "X-RateLimit-Remaining": str(remaining),
        }
        if used > self.api_quota:
            status, h, body = _json(
                429,
                {
                    "error": {
                        "code": "OVER_RATE_LIMIT",
                        "message": "You have exceeded your rate limit. Try again later.",
                    }
                },
            )
            return status, {**h, **headers}, body
        status, h, body = self._api_answer(one)
        return status, {**h, **headers}, body

    def _api_answer(self, one: Any) -> tuple[int, dict[str, str], bytes]:
        days = self.api_days()
        today = self.today
        thumbs = (one("thumbs") or "").lower() in ("true", "1", "yes")

        def bad(msg: str) -> tuple[int, dict[str, str], bytes]:
            return _json(400, {"code": 400, "msg": msg, "service_version": "v1"})

        def parse(name: str) -> dt.date | str:
            raw = one(name) or ""
            d = _parse_api_date(raw)
            if d is None:
                return f"time data '{raw}' does not match format '%Y-%m-%d'"
            if not dt.date(1995, 6, 16) <= d <= today:
                return f"Date must be between Jun 16, 1995 and {today:%b %d, %Y}."
            return d

        def render(item: dict) -> dict:
            item = dict(item)
            if not thumbs:
                item.pop("thumbnail_url", None)
            return item

        date, start, end, count = one("date"), one("start_date"), one("end_date"), one("count")
        if count is not None:
            if date or start or end:
                return bad("Bad Request: invalid field combination passed.")
            if not count.isdigit() or not 0 < int(count) <= 100:
                return bad("Count must be positive and cannot exceed 100")
            keys = sorted(days)
            picked = random.Random(int(count)).sample(keys, min(int(count), len(keys)))
            return _json(200, [render(days[k]) for k in picked])
        if start is not None or end is not None:
            if date:
                return bad("Bad Request: invalid field combination passed.")
            if start is None:
                return bad("Bad Request: end_date requires start_date.")
            s = parse("start_date")
            e = parse("end_date") if end is not None else today
            if isinstance(s, str):
                return bad(s)
            if isinstance(e, str):
                return bad(e)
            if s > e:
                return bad("start_date cannot be after end_date")
            return _json(200, [render(days[k]) for k in sorted(days) if s <= k <= e])
        d = parse("date") if date is not None else today
        if isinstance(d, str):
            return bad(d)
        if d not in days:
            return _json(
                404,
                {"code": 404, "msg": f"No data available for date: {d}", "service_version": "v1"},
            )
        return _json(200, render(days[d]))


def _parse_api_date(raw: str) -> dt.date | None:
    try:
        return dt.datetime.strptime(raw.strip(), "%Y-%m-%d").date()
    except ValueError:
        return None


def _json(status: int, obj: Any) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json"}, json.dumps(obj).encode()


def _make_handler(standin: ApodStandin) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "ApodStandin/1.0"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            log.debug("standin: " + format, *args)

        def do_HEAD(self) -> None:  # noqa: N802
            self._handle(head=True)

        def do_GET(self) -> None:  # noqa: N802
            self._handle(head=False)

        # -- plumbing
        def _send(
            self,
            status: int,
            headers: dict[str, str],
            body: bytes,
            head: bool,
            declared: int | None = None,
            close: bool = False,
        ) -> None:
            # Logged before anything is sent, so a client never sees an answer the log lacks.
            planned = 0 if head else len(body)
            entry = standin._log(self.command, self.path, status, planned)
            try:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                if declared is not None:
                    self.send_header("Content-Length", str(declared))
                if close:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                if planned:
                    self.wfile.write(body)
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
                standin._relog(entry, (self.command, self.path, status, 0))

        def _handle(self, head: bool) -> None:
            parts = urlsplit(self.path)
            with standin._lock:
                standin.request_headers.append((self.path, dict(self.headers.items())))
            if standin.latency > 0:
                time.sleep(standin.latency)
            path = parts.path
            fault = standin.faults.take(path)
            if fault is not None:
                if fault.kind == "slow":
                    time.sleep(fault.delay)
                elif fault.kind == "reset":
                    standin._log(self.command, self.path, 0, 0)
                    self.close_connection = True
                    return
                elif fault.kind in ("429", "500", "502", "503", "404"):
                    status = int(fault.kind)
                    body = f"<html><body>{status}</body></html>".encode()
                    headers = {"Content-Type": "text/html"}
                    if status in (429, 503):
                        headers["Retry-After"] = f"{fault.retry_after:g}"
                    self._send(status, headers, body, head, declared=len(body))
                    return
                elif fault.kind == "oversize":
                    body = b"\xff\xd8\xff\xe0" + b"\0" * max(fault.size - 4, 0)
                    if fault.declare_length:
                        self._send(
                            200, {"Content-Type": "image/jpeg"}, body, head, declared=len(body)
                        )
                    else:
                        self._send(200, {"Content-Type": "image/jpeg"}, body, head, close=True)
                    return

            if path == "/robots.txt":
                body = standin.robots_txt.encode()
                etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
                if self._not_modified(etag, None):
                    self._send(304, {"ETag": etag}, b"", head)
                    return
                headers = {"Content-Type": "text/plain; charset=UTF-8", "ETag": etag}
                self._send(200, headers, body, head, declared=len(body))
                return
            if path.rstrip("/") == API_PATH:
                status, headers, body = standin._api(parse_qs(parts.query))
                self._send(status, headers, body, head, declared=len(body))
                return

            f = standin._find_file(path)
            if f is None:
                body = b"<html><body><h1>Not Found</h1></body></html>"
                self._send(404, {"Content-Type": "text/html"}, body, head, declared=len(body))
                return
            body = f.read_bytes()
            ctype = CONTENT_TYPES.get(f.suffix.lower(), "application/octet-stream")
            etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
            mtime = int(f.stat().st_mtime)
            headers = {
                "Content-Type": ctype,
                "ETag": etag,
                "Last-Modified": email.utils.formatdate(mtime, usegmt=True),
            }
            if fault is not None and fault.kind == "wrong_type":
                body = b"<html><body>Please log in to continue.</body></html>"
                headers = {"Content-Type": "text/html; charset=UTF-8"}
            elif self._not_modified(etag, mtime):
                self._send(
                    304, {"ETag": etag, "Last-Modified": headers["Last-Modified"]}, b"", head
                )
                return
            if fault is not None and fault.kind == "truncate":
                self._send(
                    200, headers, body[: len(body) // 2], head, declared=len(body), close=True
                )
                return
            if fault is not None and fault.kind == "no_length":
                self._send(200, headers, body, head, close=True)
                return
            self._send(200, headers, body, head, declared=len(body))

        def _not_modified(self, etag: str, mtime: int | None) -> bool:
            inm = self.headers.get("If-None-Match")
            if inm is not None:
                return etag in [t.strip() for t in inm.split(",")] or inm.strip() == "*"
            ims = self.headers.get("If-Modified-Since")
            if ims and mtime is not None:
                try:
                    since = email.utils.parsedate_to_datetime(ims).timestamp()
                except (TypeError, ValueError):
                    return False
                return mtime <= since
            return False

    return Handler


def main(argv: list[str] | None = None) -> None:
    """Serve the stand-in until Ctrl-C (for demos: point source.base_url at it)."""
    ap = argparse.ArgumentParser(
        description="Serve a local APOD stand-in (site + API) on 127.0.0.1."
    )
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument(
        "--site", action="append", type=Path, help="a site root holding apod/ (repeatable)"
    )
    ap.add_argument(
        "--no-shared", action="store_true", help="do not serve ../shared/data/apod-site"
    )
    args = ap.parse_args(argv)
    sites = args.site or [
        p for p in default_site_dirs() if not (args.no_shared and p == SHARED_SITE)
    ]
    if not sites:
        raise SystemExit("error: no site folder found; pass --site DIR (a folder holding apod/)")
    with ApodStandin(sites, host=args.host, port=args.port) as s:
        print(f"APOD stand-in: {s.base_url}  (API: {s.api_url}?api_key=DEMO_KEY)", flush=True)
        print("serving " + ", ".join(str(p) for p in sites) + "; Ctrl-C to stop", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
