"""The site's lists of days: archivepix.html, the calendar months, the RSS feed.

Why three: archivepix.html lists every day on one page (the cheapest way to learn which
days exist), but mirrors and old copies lack it or carry stray bytes in it; the calendar
month pages and the RSS feed are the fallbacks :class:`astro_exp.apod.client.ApodClient`
walks down to. Pure functions: page bytes in, ``(date, ..., page url)`` lists out.
"""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urljoin, urlsplit

from bs4 import BeautifulSoup

from astro_exp.apod.text import (
    date_from_url,
    decode_html,
    folder_url,
    full_year,
    norm_ws,
    page_url_for,
)

_CAL_THUMB_RE = re.compile(r"S_(\d{2})(\d{2})(\d{2})\.\w+$", re.I)


def parse_archive(html: bytes | str, base_url: str) -> list[tuple[dt.date, str, str]]:
    """archivepix.html (or archivepixFull.html) -> [(date, title, absolute page url)], newest first.

    Each line is ``2023 February 11:  <a href="ap230211.html">Title</a><br>``; the
    link's name gives the date. Decoding tolerates the stray Latin-1 byte the real page has.
    """
    soup = BeautifulSoup(decode_html(html), "lxml")
    out: list[tuple[dt.date, str, str]] = []
    seen: set[dt.date] = set()
    for a in soup.find_all("a", href=True):
        href = str(a["href"]).strip()
        d = date_from_url(href)
        if d is None or d in seen:
            continue
        seen.add(d)
        out.append((d, norm_ws(a.get_text(" ")), urljoin(base_url, href)))
    return out


def _apod_folder(url: str) -> str:
    """The site's /apod/ folder from a page URL under it (calendar/..., lib/...)."""
    path = urlsplit(url).path
    for sub in ("/calendar/", "/lib/"):
        if sub in path:
            return url[: url.index(sub) + 1]
    return urljoin(url, ".") if not url.endswith("/") else url


def parse_calendar(html: bytes | str, base_url: str) -> list[tuple[dt.date, str]]:
    """A calendar month page (``calendar/caYYMM.html``) -> [(date, page url)], oldest first.

    ``base_url`` is the calendar page's own URL (or the /apod/ folder); links are
    ``../apYYMMDD.html`` next to ``S_YYMMDD.jpg`` thumbnails.
    """
    soup = BeautifulSoup(decode_html(html), "lxml")
    folder = _apod_folder(base_url)
    found: dict[dt.date, str] = {}
    for a in soup.find_all("a", href=True):
        d = date_from_url(str(a["href"]).strip())
        if d is not None:
            found.setdefault(d, page_url_for(d, folder))
    for img in soup.find_all("img", src=True):
        m = _CAL_THUMB_RE.search(str(img["src"]))
        if m:
            try:
                d = dt.date(full_year(int(m.group(1))), int(m.group(2)), int(m.group(3)))
            except ValueError:
                continue
            found.setdefault(d, page_url_for(d, folder))
    return sorted(found.items())


def parse_rss(xml: bytes | str, base_url: str) -> list[tuple[dt.date, str, str]]:
    """The APOD RSS feed -> [(date, title, page url)], newest first.

    Items link ``apYYMMDD.html`` or ``astropix.html`` (today); the thumbnail
    ``calendar/S_YYMMDD.jpg`` in the description dates the latter. Page URLs are rebuilt on
    ``base_url`` because the feed names old hosts (antwrp.gsfc.nasa.gov).
    """
    soup = BeautifulSoup(decode_html(xml), "xml")
    folder = folder_url(base_url)
    out: list[tuple[dt.date, str, str]] = []
    for item in soup.find_all("item"):
        link = item.find("link")
        desc = item.find("description")
        title = item.find("title")
        d = date_from_url(link.get_text(strip=True)) if link is not None else None
        if d is None and desc is not None:
            m = re.search(r"S_(\d{2})(\d{2})(\d{2})\.\w+", desc.get_text())
            if m:
                try:
                    d = dt.date(full_year(int(m.group(1))), int(m.group(2)), int(m.group(3)))
                except ValueError:
                    d = None
        if d is None:
            continue
        name = norm_ws(title.get_text(" ")) if title is not None else ""
        out.append((d, name, page_url_for(d, folder)))
    return out
