"""APOD over HTML: list and fetch days from the site, a mirror or the local stand-in.

Why a client apart from the parsers: all network work goes through one
:class:`~astro_exp.net.session.PoliteSession` (rate limit, robots.txt, cache, retries), and
the choice of which listing to trust (archivepix, then calendar months, then RSS) is policy
the pure parsers in :mod:`astro_exp.apod.pages` and :mod:`astro_exp.apod.listings` should not
carry.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING
from urllib.parse import urljoin

from astro_exp.apod.listings import parse_archive, parse_calendar, parse_rss
from astro_exp.apod.pages import ApodDay, NotAnApodPage, parse_day
from astro_exp.apod.text import DEFAULT_BASE_URL, FIRST_DAY, folder_url, page_url_for
from astro_exp.errors import ConfigError
from astro_exp.net.session import HttpError

if TYPE_CHECKING:
    from astro_exp.net.session import PoliteSession

log = logging.getLogger(__name__)


class ApodClient:
    """Lists and fetches APOD days from the site (or a mirror, or the local stand-in).

    Dates come from the site's own indexes (archivepix, then calendar months, then RSS), so
    a range never asks for a day that does not exist.
    """

    def __init__(self, session: PoliteSession, base_url: str = DEFAULT_BASE_URL) -> None:
        self.session = session
        self.base_url = folder_url(base_url)

    # -- indexes
    def archive(self, full: bool = False) -> dict[dt.date, tuple[str, str]]:
        """{date: (title, page url)} from archivepix.html, fetched (or revalidated) on each call.

        ``full`` adds archivepixFull.html when archivepix.html links it (the real site
        lists recent years on archivepix.html and all of them on the full page).
        """
        url = urljoin(self.base_url, "archivepix.html")
        resp = self.session.get(url, fresh=True)
        found = {d: (t, u) for d, t, u in parse_archive(resp.content, url)}
        if full and b"archivepixfull.html" in resp.content.lower():
            full_url = urljoin(self.base_url, "archivepixFull.html")
            for d, t, u in parse_archive(self.session.get(full_url).content, full_url):
                found.setdefault(d, (t, u))
        return found

    def _from_calendars(self, start: dt.date, end: dt.date) -> dict[dt.date, str]:
        out: dict[dt.date, str] = {}
        y, m = start.year, start.month
        while (y, m) <= (end.year, end.month):
            url = urljoin(self.base_url, f"calendar/ca{y % 100:02d}{m:02d}.html")
            out.update(parse_calendar(self.session.get(url).content, url))
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)
        return out

    def _from_rss(self, fresh: bool = False) -> dict[dt.date, str]:
        url = urljoin(self.base_url, "/apod.rss")
        return {
            d: u for d, _, u in parse_rss(self.session.get(url, fresh=fresh).content, self.base_url)
        }

    def newest_from_feed(self) -> dt.date:
        """The newest day the RSS feed lists (revalidated on each call; the watcher's ``rss`` poll)."""
        days = self._from_rss(fresh=True)
        if not days:
            raise NotAnApodPage(f"{urljoin(self.base_url, '/apod.rss')} lists no days")
        return max(days)

    def list_dates(
        self,
        start: dt.date | None = None,
        end: dt.date | None = None,
        last_days: int | None = None,
    ) -> list[tuple[dt.date, str]]:
        """Published days in [start, end] (or the newest ``last_days``) as (date, page url), oldest first.

        ``last_days=30`` means the 30 calendar days ending at the newest published day.
        """
        if last_days is not None and (start is not None or end is not None):
            raise ConfigError("give either last_days or start_date/end_date, not both")
        if last_days is not None and last_days < 1:
            raise ConfigError(f"last_days must be at least 1, got {last_days}")
        if start is not None and end is not None and start > end:
            raise ConfigError(f"start_date {start} is after end_date {end}; swap them")

        days: dict[dt.date, str] = {}
        try:
            arch = self.archive()
            if arch and start is not None and start < min(arch):
                arch = self.archive(full=True)
            days = {d: u for d, (_, u) in arch.items()}
            if not days:
                raise NotAnApodPage(f"{self.base_url}archivepix.html lists no days")
        except (HttpError, NotAnApodPage) as exc:
            log.warning("archivepix.html unusable (%s); using calendar pages", exc)
            newest = self.newest().date
            lo = start or (newest - dt.timedelta(days=(last_days or 1) - 1))
            hi = min(end or newest, newest)
            try:
                days = self._from_calendars(max(lo, FIRST_DAY), hi) if lo <= hi else {}
            except HttpError as exc2:
                log.warning("calendar pages unusable (%s); using the RSS feed", exc2)
                days = self._from_rss()
        if not days:
            return []
        if last_days is not None:
            newest_day = max(days)
            start, end = newest_day - dt.timedelta(days=last_days - 1), newest_day
        lo = start or dt.date.min
        hi = end or dt.date.max
        return sorted((d, u) for d, u in days.items() if lo <= d <= hi)

    # -- days
    def fetch_day(self, d: dt.date, page_url: str | None = None) -> ApodDay:
        """Fetch and parse one day page."""
        url = page_url or page_url_for(d, self.base_url)
        day = parse_day(self.session.get(url).content, url)
        if day.date != d:
            raise NotAnApodPage(f"{url} shows {day.date}, not {d}; check the archive entry")
        return day

    def newest(self) -> ApodDay:
        """Today's day from the site root (what the watcher polls)."""
        return parse_day(self.session.get(self.base_url, fresh=True).content, self.base_url)
