"""One APOD day page (``apYYMMDD.html``, ``astropix.html``, the site root) -> :class:`ApodDay`.

Pure functions (page bytes in, dataclasses out), so they are tested on saved pages; the
listings are in :mod:`astro_exp.apod.listings`, HTTP in :mod:`astro_exp.apod.client`. APOD
pages span 1995 to today in hand-written markup: no html/body tags in 1995, a UTF-8
byte-order mark, stray Latin-1 bytes inside UTF-8, YouTube/Vimeo iframes, Flash embeds,
HTML5 ``<video>``, mouse-over image swaps. Parsing walks the page in document order around
the bold "Explanation:" label instead of trusting any one layout.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from urllib.parse import urljoin, urlsplit

from bs4 import BeautifulSoup, NavigableString, Tag

from astro_exp.apod.text import (
    clean_explanation,
    collapse_ws,
    copyright_from_credit,
    date_from_url,
    decode_html,
    find_date,
    norm_ws,
    page_url_for,
    youtube_id,
    youtube_thumbnail,
)
from astro_exp.errors import AstroExpError

MediaType = str  # "image" | "video" | "other"


class NotAnApodPage(AstroExpError, ValueError):
    """The page is not an APOD day (an index, an about page, an error page, garbage)."""


@dataclass
class ApodDay:
    """One APOD day as the site (or the API) describes it; the catalog stores these fields."""

    date: dt.date
    title: str
    explanation: str
    media_type: MediaType
    image_url: str | None
    hd_url: str | None
    credit: str
    copyright: str | None
    page_url: str
    thumbnail_url: str | None = None

    def to_dict(self) -> dict:
        """JSON-friendly dict (date as ISO string), e.g. for a catalog row."""
        d = asdict(self)
        d["date"] = self.date.isoformat()
        return d


_EXPLANATION_RE = re.compile(r"^\s*explanation\s*:?\s*$", re.I)
_CREDIT_LABEL_RE = re.compile(r"(credit|copyright)", re.I)
_STOP_BOLD_RE = re.compile(
    r"(tomorrow'?s picture|next picture|follow apod|authors?\s*(&|and)\s*editors"
    r"|nasa (official|technical rep)|a service of)",
    re.I,
)
_STOP_TAGS = {"center", "hr", "h1", "h2", "h3", "form", "footer", "nav", "table"}
_BLOCK_TAGS = {"p", "br", "div", "li", "ul", "ol", "tr", "td", "blockquote", "dd", "dt"}
_MEDIA_TAGS = {"img", "iframe", "video", "embed", "object"}
_SKIP_PARENTS = {"script", "style", "noscript", "template", "title", "head"}
_IMAGE_EXT_RE = re.compile(r"\.(jpe?g|png|gif|tiff?|webp|bmp|svg)$", re.I)
_VIDEO_EXT_RE = re.compile(r"\.(mp4|webm|mov|m4v|ogv|avi|mpe?g)$", re.I)


def _is_text(node: object) -> bool:
    return type(node) is NavigableString and not (
        node.parent is not None and node.parent.name in _SKIP_PARENTS
    )


def _tag_text(tag: Tag) -> str:
    return collapse_ws(tag.get_text(" "))


def _collect(nodes: Iterable[object]) -> str:
    parts: list[str] = []
    for n in nodes:
        if isinstance(n, Tag):
            if n.name in _BLOCK_TAGS or n.name in ("b", "strong"):
                parts.append(" ")
        elif _is_text(n):
            parts.append(str(n))
    return "".join(parts)


def _media_url(tag: Tag) -> str | None:
    if tag.name == "object":
        if tag.get("data"):
            return str(tag["data"])
        for p in tag.find_all("param"):
            if str(p.get("name", "")).lower() in ("movie", "src", "url") and p.get("value"):
                return str(p["value"])
        emb = tag.find("embed")
        return str(emb["src"]) if emb is not None and emb.get("src") else None
    if tag.name == "video":
        if tag.get("src"):
            return str(tag["src"])
        src = tag.find("source", src=True)
        return str(src["src"]) if src is not None else None
    for attr in ("src", "data-src"):
        if tag.get(attr):
            return str(tag[attr]).strip()
    return None


def _hd_link(img: Tag, page_url: str) -> str | None:
    a = img.find_parent("a", href=True)
    if a is None:
        return None
    href = urljoin(page_url, str(a["href"]).strip())
    path = urlsplit(href).path
    if _IMAGE_EXT_RE.search(path) or _VIDEO_EXT_RE.search(path) or "/image/" in path:
        return href
    return None


def parse_day(html: bytes | str, url: str, *, parser: str = "lxml") -> ApodDay:
    """Parse one APOD day page (``apYYMMDD.html``, ``astropix.html`` or the site root).

    ``url`` is where the page came from: relative links resolve against it and an
    ``apYYMMDD`` name gives the date. ``page_url`` of the result is always the day's
    ``apYYMMDD.html`` (also for the site root). Raises :class:`NotAnApodPage` (one line)
    for anything that is not a day page; never another exception. ``parser`` is the
    BeautifulSoup parser: "lxml" (default, fastest) or "html.parser" (same results).
    """
    try:
        return _parse_day(decode_html(html), url, parser)
    except NotAnApodPage:
        raise
    except (AttributeError, IndexError, KeyError, TypeError, ValueError, RecursionError) as exc:
        raise NotAnApodPage(f"{url}: unreadable page ({type(exc).__name__}: {exc})") from exc


class _Page:
    """A parsed page's nodes in document order, each with its position: the parser finds the
    day's parts by where they stand relative to the header, the media and "Explanation:"."""

    def __init__(self, soup: BeautifulSoup) -> None:
        self.soup = soup
        self.nodes = list(soup.descendants)
        self._pos = {id(n): i for i, n in enumerate(self.nodes)}

    def at(self, tag: Tag) -> int:
        return self._pos[id(tag)]

    def end_of(self, tag: Tag) -> int:
        """The position just after ``tag`` and everything inside it."""
        return self.at(tag) + sum(1 for _ in tag.descendants) + 1


def _parse_day(text: str, url: str, parser: str) -> ApodDay:
    """One day page read in the order its parts stand: "Explanation:" (no day page without
    it), the picture or video between the header and it, the bold title and the credit label
    under the picture, then the date, title, credit, explanation and media URLs.

    Raises:
        NotAnApodPage: no explanation, date or title (an index page, an error page).
    """
    if not text.strip():
        raise NotAnApodPage(f"{url}: empty page, not an APOD day")
    page = _Page(BeautifulSoup(text, parser))
    bolds = [n for n in page.nodes if isinstance(n, Tag) and n.name in ("b", "strong")]
    expl = next((b for b in bolds if _EXPLANATION_RE.match(_tag_text(b))), None)
    if expl is None:
        raise NotAnApodPage(f"{url}: no 'Explanation:' section, not an APOD day page")
    i_expl = page.at(expl)
    h1 = page.soup.find("h1")
    start = page.end_of(h1) if h1 is not None and page.at(h1) < i_expl else 0
    media = _media_element(page.nodes[start:i_expl])
    i_media = page.at(media) if media is not None else start
    title_b, credit_b = _title_and_credit_labels(page, bolds, start, i_media, i_expl)
    date = _day_date(page, url, start, i_media, i_expl)
    title = _day_title(page, title_b, url)
    credit = _day_credit(page, title_b, credit_b, i_expl)
    explanation = _day_explanation(page.nodes[page.end_of(expl) :])
    media_type, image_url, hd_url, thumb = _day_media(media, page.nodes[start:i_expl], url)
    page_url = url if date_from_url(url) == date else page_url_for(date, urljoin(url, "."))
    return ApodDay(
        date=date,
        title=title,
        explanation=explanation,
        media_type=media_type,
        image_url=image_url,
        hd_url=hd_url,
        credit=credit,
        copyright=copyright_from_credit(credit),
        page_url=page_url,
        thumbnail_url=thumb,
    )


def _media_element(nodes: list) -> Tag | None:
    """The picture (or video): the first media element between the header and the text."""
    return next(
        (
            n
            for n in nodes
            if isinstance(n, Tag)
            and n.name in _MEDIA_TAGS
            and _media_url(n)
            and not (n.name == "embed" and n.find_parent("object") is not None)
        ),
        None,
    )


def _is_label(b: Tag) -> bool:
    return _tag_text(b).endswith(":")


def _title_and_credit_labels(
    page: _Page, bolds: list[Tag], start: int, i_media: int, i_expl: int
) -> tuple[Tag | None, Tag | None]:
    """The bold title under the picture and the credit label ("Image Credit:"), either None."""
    in_range = [b for b in bolds if start <= page.at(b) < i_expl and b.find_parent("h1") is None]

    def credit_label(b: Tag) -> bool:
        return _is_label(b) and bool(_CREDIT_LABEL_RE.search(_tag_text(b)))

    credit_b = next(
        (b for b in in_range if page.at(b) > i_media and credit_label(b)), None
    ) or next((b for b in in_range if credit_label(b)), None)
    i_credit = page.at(credit_b) if credit_b is not None else i_expl
    title_b = next(
        (
            b
            for b in in_range
            if i_media < page.at(b) < i_credit and not _is_label(b) and _tag_text(b)
        ),
        None,
    )
    return title_b, credit_b


def _day_date(page: _Page, url: str, start: int, i_media: int, i_expl: int) -> str:
    """The apYYMMDD name, else the date line above the picture, else <title>."""
    date = date_from_url(url)
    if date is None:
        nodes = page.nodes
        date = find_date(_collect(nodes[start:i_media])) or find_date(_collect(nodes[:i_expl]))
        if date is None and page.soup.title is not None:
            date = find_date(page.soup.title.get_text(" "))
    if date is None:
        raise NotAnApodPage(f"{url}: no date on the page and none in its name, not an APOD day")
    return date


def _day_title(page: _Page, title_b: Tag | None, url: str) -> str:
    """The bold line under the picture, else <title> "APOD: <date> - <title>"."""
    title = norm_ws(_tag_text(title_b)) if title_b is not None else ""
    if not title and page.soup.title is not None:
        raw = collapse_ws(page.soup.title.get_text(" "))
        parts = re.split(r"\s+[-\u2013\u2014]\s+", raw, maxsplit=1)
        title = parts[1].strip() if len(parts) == 2 and find_date(parts[0]) else ""
    if not title:
        raise NotAnApodPage(f"{url}: no title found, not an APOD day page")
    return title


def _day_credit(page: _Page, title_b: Tag | None, credit_b: Tag | None, i_expl: int) -> str:
    """From the credit label up to "Explanation:"; without a label, whatever stands between
    the title and "Explanation:"."""
    if credit_b is not None:
        credit = norm_ws(_collect(page.nodes[page.at(credit_b) : i_expl]))
        return re.sub(r"\s*:\s*(?=\S)", ": ", credit, count=1)
    if title_b is not None:
        credit = norm_ws(_collect(page.nodes[page.end_of(title_b) : i_expl]))
        return credit if len(credit) < 500 else ""
    return ""


def _day_explanation(nodes: list) -> str:
    """The text after the "Explanation:" label until the navigation block."""
    parts: list[str] = []
    for n in nodes:
        if isinstance(n, Tag):
            if n.name in _STOP_TAGS:
                break
            if n.name in ("b", "strong") and _STOP_BOLD_RE.search(_tag_text(n)):
                break
            if n.name in _BLOCK_TAGS:
                parts.append(" ")
        elif _is_text(n):
            parts.append(str(n))
    return clean_explanation("".join(parts))


def _day_media(
    media: Tag | None, nodes: list, url: str
) -> tuple[str, str | None, str | None, str | None]:
    """(media type, picture or video URL, HD picture URL, video thumbnail URL)."""
    image_url = hd_url = thumb = None
    if media is None:
        link = next(
            (
                a
                for a in nodes
                if isinstance(a, Tag)
                and a.name == "a"
                and a.get("href")
                and _IMAGE_EXT_RE.search(urlsplit(str(a["href"])).path)
            ),
            None,
        )
        if link is None:
            return "other", None, None, None
        # an early page that links its picture instead of showing it
        image_url = urljoin(url, str(link["href"]).strip())
        return "image", image_url, image_url, None
    src = urljoin(url, _media_url(media) or "")
    if media.name == "img":
        return "image", src, _hd_link(media, url), None
    if media.name in ("iframe", "video"):
        media_type, image_url = "video", src
        if media.name == "video" and media.get("poster"):
            thumb = urljoin(url, str(media["poster"]))
    else:  # Flash era <object>/<embed>: YouTube players are videos, the rest interactive
        is_video = youtube_id(src) or "vimeo" in src or _VIDEO_EXT_RE.search(urlsplit(src).path)
        media_type, image_url = ("video" if is_video else "other"), src
    if media_type == "video" and thumb is None:
        thumb = youtube_thumbnail(image_url)
    return media_type, image_url, hd_url, thumb
