"""APOD over HTML: parse apod.nasa.gov pages (or a mirror's) and fetch days politely.

The parsers are pure functions (page bytes in, dataclasses out) so they are tested on
saved pages; :class:`ApodClient` adds HTTP through :class:`PoliteSession`. APOD pages span
1995 to today in hand-written markup: no html/body tags in 1995, a UTF-8 byte-order mark,
stray Latin-1 bytes inside UTF-8, YouTube/Vimeo iframes, Flash embeds, HTML5 ``<video>``,
mouse-over image swaps. Parsing walks the page in document order around the bold
"Explanation:" label instead of trusting any one layout.
"""

from __future__ import annotations

import codecs
import datetime as dt
import logging
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

from bs4 import BeautifulSoup, NavigableString, Tag

from astro_exp.errors import AstroExpError, ConfigError
from astro_exp.net.session import HttpError

if TYPE_CHECKING:
    from astro_exp.net.session import PoliteSession

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://apod.nasa.gov/apod/"
UCL_MIRROR_BASE_URL = "http://www.star.ucl.ac.uk/~apod/apod/"
FIRST_DAY = dt.date(1995, 6, 16)

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


# --------------------------------------------------------------------------- decoding


def _cp1252_fallback(err: UnicodeDecodeError) -> tuple[str, int]:
    """Decode bytes that are not UTF-8 as Windows-1252 (Latin-1 for its 5 holes)."""
    bad = err.object[err.start : err.end]
    out = []
    for b in bad:
        try:
            out.append(bytes([b]).decode("cp1252"))
        except UnicodeDecodeError:
            out.append(chr(b))
    return "".join(out), err.end


codecs.register_error("astro_exp_cp1252", _cp1252_fallback)


def decode_html(data: bytes | str) -> str:
    """Bytes to text the way APOD needs: UTF-8, but a stray Latin-1 byte costs one character.

    The site serves ``charset=UTF-8`` yet some pages (and archivepix.html) hold Latin-1
    bytes; strict decoding fails and libxml2 given the raw bytes may drop the rest of the
    document, so we decode ourselves before parsing. A UTF-8 BOM is dropped.
    """
    if isinstance(data, str):
        return data.lstrip("\ufeff")
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    return data.decode("utf-8", errors="astro_exp_cp1252").lstrip("\ufeff")


# --------------------------------------------------------------------------- text helpers

_WS_RE = re.compile(r"\s+")
_MONTHS = [
    "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december",
]  # fmt: skip
_MONTH_RE = (
    r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_DATE_YMD_RE = re.compile(r"\b(\d{4})\s+" + _MONTH_RE + r"\.?\s+(\d{1,2})\b", re.I)
_DATE_MDY_RE = re.compile(
    r"\b" + _MONTH_RE + r"\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})\b", re.I
)
_AP_URL_RE = re.compile(r"(?:^|/)ap(\d{2})(\d{2})(\d{2})\.html?$", re.I)
_CAL_THUMB_RE = re.compile(r"S_(\d{2})(\d{2})(\d{2})\.\w+$", re.I)

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
_YOUTUBE_ID_RE = re.compile(
    r"(?:youtube(?:-nocookie)?\.com/(?:embed/|v/|watch\?v=)|youtu\.be/)([\w-]{6,})", re.I
)

# Navigation and promotion that must not end up in an explanation. The API copies whole
# page bottoms ("Next picture: ... < | Archive | ...") and notices ("Follow APOD on: ...").
_TAIL_RE = re.compile(
    r"\s*(?:Tomorrow'?s picture\s*:|Next picture\s*:|(?:\b[A-Z]\w{0,15}:\s*)?Follow APOD on\b"
    r"|We keep an archive of previous Astronomy Pictures"
    r"|Authors\s*(?:&|and)\s*editors\s*:|<\s*\|\s*Archive\s*\|)",
    re.I,
)
# A short trailing "Label: text" notice separated by 2+ spaces (API text keeps the spacing):
# "   Astrophysicists: Browse 3,000+ codes ...", "   Free Download: APOD 2019 Calendar".
_PROMO_TAIL_RE = re.compile(r"(?<=[.!?\"')\]])\s{2,}([A-Z][^:.!?]{0,60}:\s[^\n]{0,240})$")


def _norm_ws(text: str) -> str:
    """Collapse whitespace and tidy spaces that markup line breaks leave before punctuation."""
    text = _WS_RE.sub(" ", text.replace("\xa0", " ")).strip()
    text = re.sub(r"\s+([,;)])", r"\1", text)
    text = re.sub(r"\(\s+", "(", text)
    return re.sub(r"(?<=\w)\s+\.(?=\s|$)", ".", text)


def clean_explanation(text: str | None) -> str:
    """Explanation text without page navigation, "Tomorrow's picture" or promotion tails.

    Works on both page text and the API's ``explanation`` field (which keeps the spacing
    that separates such notices from the text: that spacing is used before collapsing).
    """
    if not text:
        return ""
    text = text.replace("\r", " ")
    text = re.sub(r"^\s*Explanation\s*:\s*", "", text, flags=re.I)
    m = _TAIL_RE.search(text)
    if m:
        text = text[: m.start()]
    text = text.rstrip()
    for _ in range(3):  # a notice can follow another ("Best of APOD ...  Follow APOD on ...")
        m = _PROMO_TAIL_RE.search(text)
        if not m or m.start() < len(text) // 3 or not _is_notice_label(m.group(1).split(":")[0]):
            break
        text = text[: m.start()].rstrip()
    return _norm_ws(text)


_CONNECTIVES = {"of", "on", "the", "and", "for", "in", "to", "a", "an", "at", "by", "&", "+", "-"}


def _is_notice_label(label: str) -> bool:
    """Title-cased like "Follow APOD on" or "Growing Gallery", not a sentence ("Two craters loom nearby")."""
    words = label.split()
    if not words or not words[0][:1].isupper():
        return False
    if "APOD" in words:  # "APOD volunteer programming opportunity: Discord"
        return True
    lower = [w for w in words[1:] if w[:1].islower() and w.lower() not in _CONNECTIVES]
    return not lower or (len(lower) == 1 and len(words) >= 3)


_ROLES = (
    "music|text|processing|annotation|animation|audio|narration|video|image|data|illustration"
    "|explanation|credits?|copyright|composition|editing|software|sound|voice|translation"
    "|top|bottom|left|right|inset|courtesy|montage|telescope|camera|license|licence"
)
# Where a second role starts inside a copyright ("JL Dauvergne Music:", "A / Bottom: B").
_ROLE_CUT_RE = re.compile(
    r"[\s;,/]+(?:rollover\s+|image\s+|original\s+|processing\s*&\s*)?(?:" + _ROLES + r")\s*:.*$",
    re.I,
)


def clean_copyright(text: str | None) -> str | None:
    """Owners' names only: no label, newlines, affiliations in parentheses, "; Music: ..." roles."""
    if text is None:
        return None
    text = _WS_RE.sub(" ", str(text)).strip()
    text = re.sub(r"^(?:[\w &]*\bcopyright\b\s*:?\s*)", "", text, flags=re.I)
    text = re.sub(r"^(?:" + _ROLES + r"|x-ray|optical|radio|infrared)\s*:\s*", "", text, flags=re.I)
    text = text.lstrip("©").strip()
    text = text.split(";")[0]
    text = _ROLE_CUT_RE.sub("", text)
    for _ in range(3):  # affiliations and web sites in parentheses are not owners
        text = re.sub(r"\s*\([^()]*\)", "", text)
    text = text.split("(")[0].replace(")", "")
    text = re.sub(r"\s+,", ",", re.sub(r",(\s*,)+", ",", text))
    text = _WS_RE.sub(" ", text).strip(" ,;:-/")
    return text or None


def copyright_from_credit(credit: str) -> str | None:
    """Owners named by a credit line, or None for NASA / public-domain days.

    "Image Credit & Copyright: A; Music: B" -> "A"; "Image Credit: NASA; Processing &
    Copyright: C" -> "C"; "Credit: NASA, ESA" -> None.
    """
    if not credit or "copyright" not in credit.lower():
        return None
    m = re.match(r"^\s*([^:]{0,60}?)\s*:\s*(.*)$", credit)
    if m and "copyright" in m.group(1).lower():
        return clean_copyright(m.group(2))
    m = re.search(r"copyright\s*(?::|by\b|\u00a9)?\s*(.+)$", credit, flags=re.I)
    return clean_copyright(m.group(1)) if m else None


# --------------------------------------------------------------------------- urls and dates


def _year(yy: int) -> int:
    return 1900 + yy if yy >= 95 else 2000 + yy


def _base_dir(base_url: str) -> str:
    """A base URL that urljoin treats as a folder (".../apod/")."""
    if base_url.endswith("/") or _AP_URL_RE.search(urlsplit(base_url).path):
        return base_url
    last = urlsplit(base_url).path.rsplit("/", 1)[-1]
    return base_url if "." in last else base_url + "/"


def page_url_for(d: dt.date, base_url: str = DEFAULT_BASE_URL) -> str:
    """The day page of ``d``: ``<base>/apYYMMDD.html`` (base is the site's /apod/ folder)."""
    return urljoin(_base_dir(base_url), f"ap{d:%y%m%d}.html")


def date_from_url(url: str) -> dt.date | None:
    """The date an ``apYYMMDD.html`` URL names, else None."""
    m = _AP_URL_RE.search(urlsplit(url).path)
    if not m:
        return None
    try:
        return dt.date(_year(int(m.group(1))), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


def _month_number(name: str) -> int:
    name = name.lower().rstrip(".")
    return next(i for i, full in enumerate(_MONTHS, 1) if full.startswith(name[:3]))


def find_date(text: str) -> dt.date | None:
    """First real calendar date written as "2020 June 9" or "June 9, 2020" in ``text``."""
    hits: list[tuple[int, dt.date]] = []
    for m in _DATE_YMD_RE.finditer(text):
        try:
            hits.append(
                (m.start(), dt.date(int(m.group(1)), _month_number(m.group(2)), int(m.group(3))))
            )
            break
        except ValueError:
            continue
    for m in _DATE_MDY_RE.finditer(text):
        try:
            hits.append(
                (m.start(), dt.date(int(m.group(3)), _month_number(m.group(1)), int(m.group(2))))
            )
            break
        except ValueError:
            continue
    hits = [h for h in hits if FIRST_DAY.year <= h[1].year <= 2100]
    return min(hits)[1] if hits else None


# --------------------------------------------------------------------------- day pages


def _is_text(node: object) -> bool:
    return type(node) is NavigableString and not (
        node.parent is not None and node.parent.name in _SKIP_PARENTS
    )


def _tag_text(tag: Tag) -> str:
    return _WS_RE.sub(" ", tag.get_text(" ")).strip()


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


def youtube_thumbnail(url: str | None) -> str | None:
    """The API's thumbnail for a YouTube embed (``img.youtube.com/vi/<id>/0.jpg``)."""
    m = _YOUTUBE_ID_RE.search(url or "")
    return f"https://img.youtube.com/vi/{m.group(1)}/0.jpg" if m else None


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


def _parse_day(text: str, url: str, parser: str) -> ApodDay:
    if not text.strip():
        raise NotAnApodPage(f"{url}: empty page, not an APOD day")
    soup = BeautifulSoup(text, parser)
    nodes = list(soup.descendants)
    pos = {id(n): i for i, n in enumerate(nodes)}

    def end_of(tag: Tag) -> int:
        return pos[id(tag)] + sum(1 for _ in tag.descendants) + 1

    bolds = [n for n in nodes if isinstance(n, Tag) and n.name in ("b", "strong")]
    expl = next((b for b in bolds if _EXPLANATION_RE.match(_tag_text(b))), None)
    if expl is None:
        raise NotAnApodPage(f"{url}: no 'Explanation:' section, not an APOD day page")
    i_expl = pos[id(expl)]

    h1 = soup.find("h1")
    start = end_of(h1) if h1 is not None and pos[id(h1)] < i_expl else 0

    # The picture (or video) is the first media element between the header and the text.
    media = next(
        (
            n
            for n in nodes[start:i_expl]
            if isinstance(n, Tag)
            and n.name in _MEDIA_TAGS
            and _media_url(n)
            and not (n.name == "embed" and n.find_parent("object") is not None)
        ),
        None,
    )
    i_media = pos[id(media)] if media is not None else start

    def is_label(b: Tag) -> bool:
        return _tag_text(b).endswith(":")

    in_range = [b for b in bolds if start <= pos[id(b)] < i_expl and b.find_parent("h1") is None]
    credit_b = next(
        (
            b
            for b in in_range
            if pos[id(b)] > i_media and is_label(b) and _CREDIT_LABEL_RE.search(_tag_text(b))
        ),
        None,
    ) or next((b for b in in_range if is_label(b) and _CREDIT_LABEL_RE.search(_tag_text(b))), None)
    i_credit = pos[id(credit_b)] if credit_b is not None else i_expl
    title_b = next(
        (
            b
            for b in in_range
            if i_media < pos[id(b)] < i_credit and not is_label(b) and _tag_text(b)
        ),
        None,
    )

    # Date: the apYYMMDD name, else the date line above the picture, else <title>.
    date = date_from_url(url)
    if date is None:
        date = find_date(_collect(nodes[start:i_media])) or find_date(_collect(nodes[:i_expl]))
        if date is None and soup.title is not None:
            date = find_date(soup.title.get_text(" "))
    if date is None:
        raise NotAnApodPage(f"{url}: no date on the page and none in its name, not an APOD day")

    # Title: the bold line under the picture, else <title> "APOD: <date> - <title>".
    title = _norm_ws(_tag_text(title_b)) if title_b is not None else ""
    if not title and soup.title is not None:
        raw = _WS_RE.sub(" ", soup.title.get_text(" ")).strip()
        parts = re.split(r"\s+[-\u2013\u2014]\s+", raw, maxsplit=1)
        title = parts[1].strip() if len(parts) == 2 and find_date(parts[0]) else ""
    if not title:
        raise NotAnApodPage(f"{url}: no title found, not an APOD day page")

    # Credit: from the credit label up to "Explanation:"; without a label, whatever
    # stands between the title and "Explanation:".
    if credit_b is not None:
        credit = _norm_ws(_collect(nodes[pos[id(credit_b)] : i_expl]))
    elif title_b is not None:
        credit = _norm_ws(_collect(nodes[end_of(title_b) : i_expl]))
        credit = credit if len(credit) < 500 else ""
    else:
        credit = ""
    credit = re.sub(r"\s*:\s*(?=\S)", ": ", credit, count=1) if credit_b is not None else credit

    # Explanation: text after the label until the navigation block.
    parts: list[str] = []
    for n in nodes[end_of(expl) :]:
        if isinstance(n, Tag):
            if n.name in _STOP_TAGS:
                break
            if n.name in ("b", "strong") and _STOP_BOLD_RE.search(_tag_text(n)):
                break
            if n.name in _BLOCK_TAGS:
                parts.append(" ")
        elif _is_text(n):
            parts.append(str(n))
    explanation = clean_explanation("".join(parts))

    # Media type and URLs.
    image_url = hd_url = thumb = None
    if media is None:
        media_type = "other"
        link = next(
            (
                a
                for a in nodes[start:i_expl]
                if isinstance(a, Tag)
                and a.name == "a"
                and a.get("href")
                and _IMAGE_EXT_RE.search(urlsplit(str(a["href"])).path)
            ),
            None,
        )
        if link is not None:  # an early page that links its picture instead of showing it
            media_type = "image"
            image_url = hd_url = urljoin(url, str(link["href"]).strip())
    else:
        src = urljoin(url, _media_url(media) or "")
        if media.name == "img":
            media_type, image_url, hd_url = "image", src, _hd_link(media, url)
        elif media.name in ("iframe", "video"):
            media_type, image_url = "video", src
            if media.name == "video" and media.get("poster"):
                thumb = urljoin(url, str(media["poster"]))
        else:  # Flash era <object>/<embed>: YouTube players are videos, the rest interactive
            is_video = (
                _YOUTUBE_ID_RE.search(src)
                or "vimeo" in src
                or _VIDEO_EXT_RE.search(urlsplit(src).path)
            )
            media_type, image_url = ("video" if is_video else "other"), src
        if media_type == "video" and thumb is None:
            thumb = youtube_thumbnail(image_url)

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


# --------------------------------------------------------------------------- index pages


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
        out.append((d, _norm_ws(a.get_text(" ")), urljoin(base_url, href)))
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
                d = dt.date(_year(int(m.group(1))), int(m.group(2)), int(m.group(3)))
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
    folder = _base_dir(base_url)
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
                    d = dt.date(_year(int(m.group(1))), int(m.group(2)), int(m.group(3)))
                except ValueError:
                    d = None
        if d is None:
            continue
        name = _norm_ws(title.get_text(" ")) if title is not None else ""
        out.append((d, name, page_url_for(d, folder)))
    return out


# --------------------------------------------------------------------------- client


class ApodClient:
    """Lists and fetches APOD days from the site (or a mirror, or the local stand-in).

    Dates come from the site's own indexes (archivepix, then calendar months, then RSS), so
    a range never asks for a day that does not exist.
    """

    def __init__(self, session: PoliteSession, base_url: str = DEFAULT_BASE_URL) -> None:
        self.session = session
        self.base_url = _base_dir(base_url)

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
        return {d: u for d, _, u in parse_rss(self.session.get(url, fresh=fresh).content, self.base_url)}

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
