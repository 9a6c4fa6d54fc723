"""Text of APOD pages and API items: decoding, cleaning, and the dates and names of days.

Why one module: the day parser (:mod:`astro_exp.apod.pages`), the listings
(:mod:`astro_exp.apod.listings`) and the API client (:mod:`astro_exp.apod.api`) must clean
explanations and credits the same way and agree on which ``apYYMMDD.html`` names a day, or
the same day would read differently depending on where it came from.
"""

from __future__ import annotations

import codecs
import datetime as dt
import re
from urllib.parse import urljoin, urlsplit

DEFAULT_BASE_URL = "https://apod.nasa.gov/apod/"
UCL_MIRROR_BASE_URL = "http://www.star.ucl.ac.uk/~apod/apod/"
FIRST_DAY = dt.date(1995, 6, 16)

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
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
]
_MONTH_RE = (
    r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_DATE_YMD_RE = re.compile(r"\b(\d{4})\s+" + _MONTH_RE + r"\.?\s+(\d{1,2})\b", re.I)
_DATE_MDY_RE = re.compile(
    r"\b" + _MONTH_RE + r"\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})\b", re.I
)
_AP_URL_RE = re.compile(r"(?:^|/)ap(\d{2})(\d{2})(\d{2})\.html?$", re.I)
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


def collapse_ws(text: str) -> str:
    """Runs of whitespace as one space, trimmed (markup line breaks are not text)."""
    return _WS_RE.sub(" ", text).strip()


def norm_ws(text: str) -> str:
    """Collapse whitespace and tidy spaces that markup line breaks leave before punctuation."""
    text = collapse_ws(text.replace("\xa0", " "))
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
    return norm_ws(text)


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
    text = collapse_ws(str(text))
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


def full_year(yy: int) -> int:
    """The year of a two-digit ``apYYMMDD`` / ``S_YYMMDD`` name (APOD began in 1995)."""
    return 1900 + yy if yy >= 95 else 2000 + yy


def folder_url(base_url: str) -> str:
    """A base URL that urljoin treats as a folder (".../apod/")."""
    if base_url.endswith("/") or _AP_URL_RE.search(urlsplit(base_url).path):
        return base_url
    last = urlsplit(base_url).path.rsplit("/", 1)[-1]
    return base_url if "." in last else base_url + "/"


def page_url_for(d: dt.date, base_url: str = DEFAULT_BASE_URL) -> str:
    """The day page of ``d``: ``<base>/apYYMMDD.html`` (base is the site's /apod/ folder)."""
    return urljoin(folder_url(base_url), f"ap{d:%y%m%d}.html")


def date_from_url(url: str) -> dt.date | None:
    """The date an ``apYYMMDD.html`` URL names, else None."""
    m = _AP_URL_RE.search(urlsplit(url).path)
    if not m:
        return None
    try:
        return dt.date(full_year(int(m.group(1))), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


def youtube_id(url: str | None) -> str | None:
    """The video id of a YouTube page or player URL (embed/, v/, watch?v=, youtu.be/), else None."""
    m = _YOUTUBE_ID_RE.search(url or "")
    return m.group(1) if m else None


def youtube_thumbnail(url: str | None) -> str | None:
    """The API's thumbnail for a YouTube embed (``img.youtube.com/vi/<id>/0.jpg``)."""
    vid = youtube_id(url)
    return f"https://img.youtube.com/vi/{vid}/0.jpg" if vid else None


def _month_number(name: str) -> int:
    name = name.lower().rstrip(".")
    return next(i for i, full in enumerate(_MONTHS, 1) if full.startswith(name[:3]))


def _first_real_date(
    pattern: re.Pattern[str], text: str, groups: tuple[int, int, int]
) -> tuple[int, dt.date] | None:
    """(offset, date) of the first match of ``pattern`` in ``text`` that is a real calendar
    date; ``groups`` numbers the year, month-name and day groups."""
    year, month, day = groups
    for m in pattern.finditer(text):
        try:
            return m.start(), dt.date(
                int(m.group(year)), _month_number(m.group(month)), int(m.group(day))
            )
        except ValueError:
            continue
    return None


def find_date(text: str) -> dt.date | None:
    """First real calendar date written as "2020 June 9" or "June 9, 2020" in ``text``."""
    found = (
        _first_real_date(_DATE_YMD_RE, text, (1, 2, 3)),
        _first_real_date(_DATE_MDY_RE, text, (3, 1, 2)),
    )
    hits = [h for h in found if h is not None and FIRST_DAY.year <= h[1].year <= 2100]
    return min(hits)[1] if hits else None
