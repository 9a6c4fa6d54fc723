"""APOD through NASA's official API (api.nasa.gov/planetary/apod), quirks included.

Real responses are messier than the documentation: dates not zero-padded ("2015-1-3"),
``copyright`` wrapped in newlines or merged with the next credit ("JL Dauvergne Music:"),
titles ending in "\\r\\nCredit:", whole page bottoms and "Follow APOD on" notices inside
``explanation``, missing keys, ``media_type: other`` without ``url`` (HTML5 video days),
placeholder items without text. :func:`parse_api_item` turns any of them into an
:class:`ApodDay` (or raises :class:`ApiItemError`, one line).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from astro_exp.apod.pages import ApodDay
from astro_exp.apod.text import (
    DEFAULT_BASE_URL,
    FIRST_DAY,
    clean_copyright,
    clean_explanation,
    page_url_for,
    youtube_thumbnail,
)
from astro_exp.errors import AstroExpError, ConfigError
from astro_exp.net.session import HttpError, redact

if TYPE_CHECKING:
    from astro_exp.net.session import PoliteSession

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.nasa.gov/planetary/apod"
_IMAGE_EXT = (".jpg", ".jpeg", ".png", ".gif", ".tif", ".tiff", ".webp", ".bmp")
_VIDEO_EXT = (".mp4", ".webm", ".mov", ".m4v", ".ogv")


class ApiItemError(AstroExpError, ValueError):
    """An API item that describes no usable day (placeholder, no date, no title)."""


def _parse_date(raw: Any) -> dt.date | None:
    if isinstance(raw, dt.date):
        return raw
    m = re.match(r"^\s*(\d{4})-(\d{1,2})-(\d{1,2})\s*$", str(raw or ""))
    if not m:
        return None
    try:
        return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


def _clean_title(raw: Any) -> str:
    title = re.sub(r"\s+", " ", str(raw or "")).strip()
    return re.sub(
        r"\s*(?:(?:Image|Picture|Video)\s+)?Credits?\s*:?\s*$", "", title, flags=re.I
    ).strip()


def _infer_media(url: str | None) -> str:
    if not url:
        return "other"
    low = urlsplit(url).path.lower()
    if low.endswith(_IMAGE_EXT):
        return "image"
    if low.endswith(_VIDEO_EXT) or re.search(r"youtube|youtu\.be|vimeo|/embed/", url, re.I):
        return "video"
    return "other"


def parse_api_item(item: dict, base_url_for_pages: str = DEFAULT_BASE_URL) -> ApodDay:
    """One API item -> ApodDay, whatever quirks it has.

    The page URL is rebuilt on ``base_url_for_pages``; ``credit`` is the copyright holder
    (the API gives no credit line; "" for NASA / public-domain days).
    """
    if not isinstance(item, dict):
        raise ApiItemError(
            f"API item is {type(item).__name__}, not an object; the response is malformed"
        )
    date = _parse_date(item.get("date"))
    if date is None:
        raise ApiItemError(f"API item has no valid date ({item.get('date')!r}); skip it")
    if item.get("no_data") or not item.get("title"):
        raise ApiItemError(
            f"API item for {date} has no title (a placeholder); fetch that day again later"
        )
    url = item.get("url") or None
    hd = item.get("hdurl") or None
    media = str(item.get("media_type") or "").strip().lower() or _infer_media(url)
    if media not in ("image", "video", "other"):
        media = _infer_media(url)
    image_url = urljoin(base_url_for_pages, url) if url else None
    hd_url = urljoin(base_url_for_pages, hd) if hd else None
    thumb = item.get("thumbnail_url") or None
    if media == "video" and thumb is None:
        thumb = youtube_thumbnail(image_url)
    owner = clean_copyright(item.get("copyright"))
    return ApodDay(
        date=date,
        title=_clean_title(item.get("title")),
        explanation=clean_explanation(item.get("explanation")),
        media_type=media,
        image_url=image_url,
        hd_url=hd_url,
        credit=owner or "",
        copyright=owner,
        page_url=page_url_for(date, base_url_for_pages),
        thumbnail_url=thumb,
    )


class ApodApiClient:
    """Fetch APOD days from the official API in date chunks.

    The key comes from ``api_key``, else ``NASA_API_KEY``, else ``DEMO_KEY`` (30
    requests an hour). Rate-limit headers are watched by the session.
    """

    def __init__(
        self,
        session: PoliteSession,
        base_url: str = DEFAULT_API_URL,
        api_key: str | None = None,
        pages_base_url: str = DEFAULT_BASE_URL,
        today: Callable[[], dt.date] | None = None,
    ) -> None:
        self.session = session
        self.base_url = base_url
        self.api_key = api_key or os.environ.get("NASA_API_KEY") or "DEMO_KEY"
        self.pages_base_url = pages_base_url
        self._today = today or dt.date.today

    def _get(self, **params: str) -> Any:
        params = {"api_key": self.api_key, "thumbs": "true", **params}
        resp = self.session.get(self.base_url, params=params, check=False)
        if resp.status_code == 403:
            raise HttpError(
                "the NASA API refused the key (HTTP 403); set NASA_API_KEY to a key from api.nasa.gov",
                url=redact(resp.url),
                status=403,
            )
        if resp.status_code >= 400:
            msg = ""
            try:
                body = resp.json()
                msg = body.get("msg") or body.get("error", {}).get("message", "")
            except (ValueError, AttributeError):
                pass
            if resp.status_code == 429:
                raise HttpError(
                    "the NASA API rate limit is used up (HTTP 429); wait an hour or set NASA_API_KEY"
                    " (DEMO_KEY allows 30 requests an hour)",
                    url=redact(resp.url),
                    status=429,
                )
            raise HttpError(
                f"the NASA API answered HTTP {resp.status_code} for {redact(resp.url)}: {msg or 'no reason given'};"
                " check the dates",
                url=redact(resp.url),
                status=resp.status_code,
            )
        try:
            return resp.json()
        except ValueError as exc:
            raise HttpError(
                f"the NASA API sent something that is not JSON for {redact(resp.url)}; try again later",
                url=redact(resp.url),
            ) from exc

    def _items(self, data: Any) -> list[ApodDay]:
        out: list[ApodDay] = []
        for item in data if isinstance(data, list) else [data]:
            try:
                out.append(parse_api_item(item, self.pages_base_url))
            except ApiItemError as exc:
                log.warning("skipping an API item: %s", exc)
        return out

    def fetch_day(self, d: dt.date) -> ApodDay:
        """One day (``date=``)."""
        days = self._items(self._get(date=d.isoformat()))
        if not days:
            raise ApiItemError(f"the NASA API has no usable item for {d}; try again later")
        return days[0]

    def newest(self) -> ApodDay:
        """Today's day as the API has it (no ``date=``: what the watcher polls)."""
        days = self._items(self._get())
        if not days:
            raise ApiItemError("the NASA API has no usable item for today; try again later")
        return max(days, key=lambda d: d.date)

    def fetch_range(self, start: dt.date, end: dt.date, chunk_days: int = 60) -> list[ApodDay]:
        """Days in [start, end], asked for ``chunk_days`` at a time; oldest first, one per date.

        The range is clipped to 1995-06-16 .. today; if the API has not published today
        yet (it answers 400/404 for a range ending today) the chunk is asked again without it.
        """
        if start > end:
            raise ConfigError(f"start_date {start} is after end_date {end}; swap them")
        if chunk_days < 1:
            raise ConfigError(f"chunk_days must be at least 1, got {chunk_days}")
        today = self._today()
        start, end = max(start, FIRST_DAY), min(end, today)
        found: dict[dt.date, ApodDay] = {}
        lo = start
        while lo <= end:
            hi = min(lo + dt.timedelta(days=chunk_days - 1), end)
            try:
                data = self._get(start_date=lo.isoformat(), end_date=hi.isoformat())
            except HttpError as exc:
                if exc.status in (400, 404) and hi == today and hi > lo:
                    log.info("the API has no %s yet; asking up to the day before", today)
                    data = self._get(
                        start_date=lo.isoformat(), end_date=(hi - dt.timedelta(days=1)).isoformat()
                    )
                else:
                    raise
            for day in self._items(data):
                if lo <= day.date <= hi:
                    found.setdefault(day.date, day)
            lo = hi + dt.timedelta(days=1)
        return [found[d] for d in sorted(found)]

    def last_days(self, n: int) -> list[ApodDay]:
        """The ``n`` calendar days ending today (what exists of them)."""
        if n < 1:
            raise ConfigError(f"last_days must be at least 1, got {n}")
        today = self._today()
        return self.fetch_range(today - dt.timedelta(days=n - 1), today)
