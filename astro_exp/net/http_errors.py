"""The one-line errors of the HTTP layer and the URL helpers their messages use.

Why apart from the session: callers (the APOD client, the scraper) catch these without
needing the session's machinery, and every message goes through :func:`redact` so no API key
reaches a log.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import requests

from astro_exp.errors import AstroExpError


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


def redact(url: str) -> str:
    """A URL safe for logs and messages: API keys hidden."""
    return re.sub(r"(?i)(api_key|apikey|key|token)=[^&]*", r"\1=***", url)


def _host(url: str) -> str:
    return urlsplit(url).netloc.lower()


def _int_header(value: str | None) -> int | None:
    try:
        return int(str(value).strip()) if value is not None else None
    except ValueError:
        return None


def status_error(
    resp: requests.Response, url: str, retries: int, max_retry_after: float
) -> HttpError:
    """The one-line error for an HTTP error answer, after ``retries`` retries."""
    code = resp.status_code
    host = _host(url)
    where = redact(url)
    if code == 404:
        return HttpError(f"{where} not found (HTTP 404); check the date or base_url", url, code)
    wait = _int_header(resp.headers.get("Retry-After"))
    if code in (429, 503) and wait is not None and wait > max_retry_after:
        return RateLimited(
            f"{host} asks us to wait {wait} s (Retry-After), longer than max_retry_after;"
            " try again later",
            url,
            code,
        )
    if code == 429:
        return RateLimited(
            f"{host} keeps answering 429 Too Many Requests after {retries} retries;"
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
            f"{host} failed with HTTP {code} after {retries} retries; try again later",
            url,
            code,
        )
    return HttpError(f"GET {where} failed with HTTP {code}; check the URL", url, code)


def describe_exception(exc: Exception, url: str, retries: int, timeout: float) -> str:
    """One line for a request that raised (timeout, cut off, refused) instead of answering."""
    text = str(exc)
    where = redact(url)
    if isinstance(exc, requests.Timeout) or "timed out" in text.lower():
        return (
            f"{where} timed out after {retries} retries ({timeout:g} s each);"
            " check the connection or raise the timeout"
        )
    if "IncompleteRead" in text or isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return f"{where} was cut off mid-transfer; run again to retry"
    if "Retry-After" in text:
        return f"{_host(url)} asks us to wait too long (Retry-After); try again later"
    if isinstance(exc, requests.exceptions.RetryError):
        return f"{_host(url)} kept failing after {retries} retries; try again later"
    if isinstance(exc, requests.ConnectionError):
        return f"cannot connect to {_host(url)} for {where}; check the network and base_url"
    return f"GET {where} failed ({type(exc).__name__}); check the URL"
