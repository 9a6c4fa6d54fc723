"""How the APOD stand-in (:mod:`astro_exp.apod.standin`) answers a request: HTTP plumbing,
injected faults, robots.txt, site files with ``ETag``/``Last-Modified`` and 304 answers, and
the APOD API endpoint shaped like api.nasa.gov's (quota headers, its error messages).

Why apart from the server's state: the request handler and the API's rules are most of the
stand-in's code, and they read the server only through its public state (sites, faults,
logs).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import json
import logging
import random
import time
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from astro_exp.apod.pages import ApodDay
from astro_exp.apod.text import youtube_thumbnail

if TYPE_CHECKING:
    from astro_exp.apod.standin import ApodStandin, Fault

log = logging.getLogger(__name__)

API_PATH = "/planetary/apod"
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


# -- the API endpoint ---------------------------------------------------------------------------


def api_response(
    standin: ApodStandin, query: dict[str, list[str]]
) -> tuple[int, dict[str, str], bytes]:
    """The API's answer to ``query``: 403 without a key, 429 past the key's quota, else the
    days asked for; every keyed answer carries the ``X-RateLimit-*`` headers."""

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
    used = standin._count_api_call(key)
    remaining = max(standin.api_quota - used, 0)
    headers = {
        "X-RateLimit-Limit": str(standin.api_quota),
        "X-RateLimit-Remaining": str(remaining),
    }
    if used > standin.api_quota:
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
    status, h, body = _api_answer(standin, one)
    return status, {**h, **headers}, body


def _api_answer(standin: ApodStandin, one: Any) -> tuple[int, dict[str, str], bytes]:
    """The answer for the query's ``date``, ``start_date``/``end_date`` or ``count``, with
    the real service's messages for a bad combination or a date out of range."""
    days = standin.api_days()
    today = standin.today
    thumbs = (one("thumbs") or "").lower() in ("true", "1", "yes")

    def bad(msg: str) -> tuple[int, dict[str, str], bytes]:
        return _json(400, {"code": 400, "msg": msg, "service_version": "v1"})

    def parse(name: str) -> dt.date | str:
        raw = one(name) or ""
        d = parse_api_date(raw)
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


def parse_api_date(raw: str) -> dt.date | None:
    """``YYYY-MM-DD`` as a date; None when it is not one."""
    try:
        return dt.datetime.strptime(raw.strip(), "%Y-%m-%d").date()
    except ValueError:
        return None


def _json(status: int, obj: Any) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json"}, json.dumps(obj).encode()


# -- the request handler ------------------------------------------------------------------------


def make_handler(standin: ApodStandin) -> type[BaseHTTPRequestHandler]:
    """The handler class of a server that serves ``standin``."""
    return type("Handler", (_Handler,), {"standin": standin})


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive answers of the stand-in, each logged before it is sent."""

    protocol_version = "HTTP/1.1"
    server_version = "ApodStandin/1.0"
    standin: ApodStandin  # set by make_handler

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
        entry = self.standin._log(self.command, self.path, status, planned)
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
            self.standin._relog(entry, (self.command, self.path, status, 0))

    def _handle(self, head: bool) -> None:
        """One request: the latency, a fault, then robots.txt, the API or a site file."""
        standin = self.standin
        parts = urlsplit(self.path)
        with standin._lock:
            standin.request_headers.append((self.path, dict(self.headers.items())))
        if standin.latency > 0:
            time.sleep(standin.latency)
        path = parts.path
        fault = standin.faults.take(path)
        if fault is not None and self._answer_fault(fault, head):
            return
        if path == "/robots.txt":
            self._robots(head)
        elif path.rstrip("/") == API_PATH:
            status, headers, body = api_response(standin, parse_qs(parts.query))
            self._send(status, headers, body, head, declared=len(body))
        else:
            self._file(path, fault, head)

    def _answer_fault(self, fault: Fault, head: bool) -> bool:
        """Answer with ``fault`` when it replaces the answer (True); ``slow`` only waits, and
        the faults of a file's answer (wrong_type, truncate, no_length) are :meth:`_file`'s."""
        if fault.kind == "slow":
            self.standin.slow_wait(fault.delay)
        elif fault.kind == "reset":
            self.standin._log(self.command, self.path, 0, 0)
            self.close_connection = True
            return True
        elif fault.kind in ("429", "500", "502", "503", "404"):
            status = int(fault.kind)
            body = f"<html><body>{status}</body></html>".encode()
            headers = {"Content-Type": "text/html"}
            if status in (429, 503):
                headers["Retry-After"] = f"{fault.retry_after:g}"
            self._send(status, headers, body, head, declared=len(body))
            return True
        elif fault.kind == "oversize":
            body = b"\xff\xd8\xff\xe0" + b"\0" * max(fault.size - 4, 0)
            if fault.declare_length:
                self._send(200, {"Content-Type": "image/jpeg"}, body, head, declared=len(body))
            else:
                self._send(200, {"Content-Type": "image/jpeg"}, body, head, close=True)
            return True
        return False

    def _robots(self, head: bool) -> None:
        """/robots.txt, with an ETag and 304 answers."""
        body = self.standin.robots_txt.encode()
        etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
        if self._not_modified(etag, None):
            self._send(304, {"ETag": etag}, b"", head)
            return
        headers = {"Content-Type": "text/plain; charset=UTF-8", "ETag": etag}
        self._send(200, headers, body, head, declared=len(body))

    def _file(self, path: str, fault: Fault | None, head: bool) -> None:
        """A site file (404 when no site holds it), 304 when unchanged, or as ``fault`` spoils it."""
        f = self.standin._find_file(path)
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
            self._send(304, {"ETag": etag, "Last-Modified": headers["Last-Modified"]}, b"", head)
            return
        if fault is not None and fault.kind == "truncate":
            self._send(200, headers, body[: len(body) // 2], head, declared=len(body), close=True)
            return
        if fault is not None and fault.kind == "no_length":
            self._send(200, headers, body, head, close=True)
            return
        self._send(200, headers, body, head, declared=len(body))

    def _not_modified(self, etag: str, mtime: int | None) -> bool:
        """Whether the request's If-None-Match (else If-Modified-Since) says it has this."""
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
