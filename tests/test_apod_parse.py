"""APOD HTML parsing: exact on every shared real page, robust on other eras and on garbage.

Expected values of the shared pages were written by reading each page (see the README of
../shared/data/apod-site); the fixture pages are the project's own, in real APOD markup.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
from pathlib import Path

import pytest

from astro_exp.apod.listings import parse_archive, parse_calendar, parse_rss
from astro_exp.apod.pages import ApodDay, NotAnApodPage, parse_day
from astro_exp.apod.text import (
    clean_copyright,
    clean_explanation,
    copyright_from_credit,
    date_from_url,
    decode_html,
    find_date,
    page_url_for,
)
from tests.support import SHARED_DATA

SITE = SHARED_DATA / "apod-site"
API_MONTHS = SHARED_DATA / "apod-api" / "archive-by-month" / "database"
FIX = Path(__file__).parent / "fixtures" / "apod_site"
needs_shared = pytest.mark.skipif(
    not (SITE / "apod").is_dir(), reason="../shared/data/apod-site is absent"
)

NASA = "https://apod.nasa.gov/apod/"
TEST = "http://apod.test/apod/"

# name -> expected fields; "starts"/"ends" are the explanation's first and last words.
SHARED_PAGES: dict[str, dict] = {
    "ap950622.html": dict(
        date=dt.date(1995, 6, 22),
        title="The Earth from Apollo 17",  # the bold line on the page; <title> says "Earth from Apollo 17"
        media_type="image",
        image_url=NASA + "image/earth_a17.gif",
        hd_url=NASA + "image/earth_a17.gif",
        credit="Picture Credit: NASA, Apollo 17, NSSDC",
        copyright=None,
        thumbnail_url=None,
        starts="In 1972 Astronauts on the United States's last lunar mission, Apollo 17, took this picture",
        ends="below the delicate wisps of white clouds. For more information see NASA NSSDC press release.",
    ),
    "ap200609.html": dict(
        date=dt.date(2020, 6, 9),
        title="Orion over Argentine Mountains",
        media_type="image",
        image_url=NASA
        + "image/2006/OrionMountains_Tabbush_960.jpg",  # not the mouse-over annotated one
        hd_url=NASA + "image/2006/OrionMountains_Tabbush_2048.jpg",
        credit="Image Credit & Copyright: Nicolas Tabbush",
        copyright="Nicolas Tabbush",
        thumbnail_url=None,
        starts="Do you recognize the constellation of Orion? It may be harder than usual in today's featured image because",
        ends="The picturesque scene was captured early last year from mountains in San Juan, Argentina.",
    ),
    "ap211010.html": dict(
        date=dt.date(2021, 10, 10),
        title="Full Moon Silhouettes",
        media_type="video",
        image_url="https://player.vimeo.com/video/58385453?h=2f48504431&portrait=0&badge=0",
        hd_url=None,
        credit="Video Credit & Copyright: Mark Gee; Music: Tenderness (Dan Phillipson)",
        copyright="Mark Gee",
        thumbnail_url=None,
        starts="Have you ever watched the Moon rise? The slow rise of a nearly full moon over a clear horizon",
        ends="where you observe a first-quarter Moon along with other lunar enthusiasts.",
    ),
    "ap220330.html": dict(
        date=dt.date(2022, 3, 30),
        title="Animation: Odd Radio Circles",
        media_type="video",
        image_url="https://www.youtube.com/embed/m8qvOpcDt1o?rel=0",
        hd_url=None,
        credit=(
            "Credits: Illustration: Sam Moorfield; Data: CSIRO, HST (HUDF), ESA, NASA; Image: J. English "
            "(U. Manitoba), EMU, MeerKAT, DES (CTIO); Text: Jayanne English"
        ),
        copyright=None,
        thumbnail_url="https://img.youtube.com/vi/m8qvOpcDt1o/0.jpg",
        starts="What do you call a cosmic puzzle that no one expected to see? In this case, Odd Radio Circles, aka ORCs.",
        ends="the up-coming Square Kilometer Array can help test this and other promising scenarios.",
    ),
    "ap220420.html": dict(
        date=dt.date(2022, 4, 20),
        title="Planet Line over New York Bridge",
        media_type="image",
        image_url=NASA + "image/2204/PlanetBridge_Honda_960.jpg",
        hd_url=NASA + "image/2204/PlanetBridge_Honda_3000.jpg",
        credit="Image Credit & Copyright: Stan Honda",
        copyright="Stan Honda",
        thumbnail_url=None,
        starts="There's an interesting sky to see if you wake up before the Sun. Lined up on toward the eastern horizon",
        ends="The morning planet parade will continue throughout April and May, and will even be joined by Mercury in June.",
    ),
    "ap230210.html": dict(
        date=dt.date(2023, 2, 10),
        title="ZTF meets ATLAS",
        media_type="image",
        image_url=NASA + "image/2302/C2022E3ZTFmeetsC2022U2Atlasbeschriftet1024.jpg",
        hd_url=NASA + "image/2302/C2022E3ZTFmeetsC2022U2Atlasbeschriftet.jpg",
        credit="Image Credit & Copyright: Stefan Bemmerl",
        copyright="Stefan Bemmerl",
        thumbnail_url=None,
        starts="Fading as it races across planet Earth's northern skies comet C/2022 E3 (ZTF) shares this telescopic frame",
        ends="the good-binocular comet ZTF will appear close to bright planet Mars tonight.",
    ),
    "ap250324.html": dict(
        date=dt.date(2025, 3, 24),
        title="A Total Lunar Eclipse Over Uruguay",
        media_type="video",  # HTML5 <video>: the API calls it "other" and gives no url
        image_url=NASA + "image/2503/LunarEclipseUruguay_Salazar.mp4",
        hd_url=None,
        credit="Video Credit & Copyright: Mauricio Salazar",
        copyright="Mauricio Salazar",
        thumbnail_url=None,
        starts="If the full Moon suddenly faded, what would you see? The answer was recorded in a dramatic time lapse video",
        ends="the Moon emerged from the Earth's shadow and its bright full glare again dominated the sky.",
    ),
    "index.html": dict(
        date=dt.date(2023, 2, 11),  # the site root: <title> has no date, the page body has
        title="Magellanic Clouds over Chile",
        media_type="image",
        image_url=NASA + "image/2302/magellanic1200.jpg",
        hd_url=NASA + "image/2302/magellanic.jpg",
        credit="Image Credit & Copyright: Felipe Mac Auliffe L\u00f3pez",
        copyright="Felipe Mac Auliffe L\u00f3pez",
        thumbnail_url=None,
        starts="The two prominent clouds in this Chilean Atacama Desert skyscape captured on January 21 actually lie beyond",
        ends="the imprints of gravitational tidal interactions between the Large and Small Magellanic Clouds.",
    ),
}
SHARED_PAGE_URL = {"index.html": NASA + "ap230211.html"}
SHARED_NOT_DAYS = ["archivepix.html", "calendar/ca2301.html", "lib/about_apod.html"]

FIXTURE_PAGES: dict[str, dict] = {
    "ap950625.html": dict(
        date=dt.date(1995, 6, 25),
        title="Jupiter as Seen by Voyager",
        media_type="image",
        image_url=TEST + "image/jupiter_voyager.gif",
        hd_url=TEST + "image/jupiter_voyager.gif",
        credit="Picture Credit: NASA, JPL, Voyager Project",
        copyright=None,
        thumbnail_url=None,
        starts="As the Voyager spacecraft approached Jupiter in 1979",
        ends="raged for centuries. For more information see the Voyager mission pages.",
    ),
    "ap960915.html": dict(
        date=dt.date(1996, 9, 15),
        title="The Eagle's Pillars",
        media_type="image",
        image_url=TEST + "image/m16_small.gif",
        hd_url=TEST + "image/m16_big.jpg",
        credit="Credit: J. Hester, P. Scowen (ASU), HST, NASA",
        copyright=None,
        thumbnail_url=None,
        starts="These dark columns of gas and dust in M16 are light-years tall.",
        ends="uncovering dense globules called EGGs.",
    ),
    "ap010704.html": dict(
        date=dt.date(2001, 7, 4),
        title="Fireworks and Star Trails",
        media_type="image",
        image_url=TEST + "image/0107/fireworks_sky.jpg",
        hd_url=TEST + "image/0107/fireworks_sky_big.jpg",
        credit="Credit & Copyright: Wally Pacholka (AstroPics)",
        copyright="Wally Pacholka",
        thumbnail_url=None,
        starts="Bursts of fireworks light the foreground",
        ends="share one frame on this Independence Day.",
    ),
    "ap090520.html": dict(
        date=dt.date(2009, 5, 20),
        title="Hubble Servicing in Orbit",
        media_type="video",
        image_url="http://www.youtube.com/v/AbCdEfGhIjK&hl=en&fs=1&rel=0",
        hd_url=None,
        credit="Credit: NASA, STS-125 Crew",
        copyright=None,
        thumbnail_url="https://img.youtube.com/vi/AbCdEfGhIjK/0.jpg",
        starts="Astronauts on a spacewalk replace parts",
        ends="working for years to come.",
    ),
    "ap100401.html": dict(
        date=dt.date(2010, 4, 1),
        title="An Interactive Orrery",
        media_type="other",
        image_url=TEST + "image/1004/orrery.swf",
        hd_url=None,
        credit="Illustration Credit: Orrery Workshop",
        copyright=None,
        thumbnail_url=None,
        starts="Drag the planets to set the date:",
        ends="while the outer giants crawl.",
    ),
    "ap140412.html": dict(
        date=dt.date(2014, 4, 12),
        title="NGC 2841 Close Up",
        media_type="image",
        image_url=TEST + "image/1404/NGC2841_960.jpg",
        hd_url=TEST + "image/1404/NGC2841_2048.jpg",
        credit="Image Credit: NASA, ESA, Hubble Legacy Archive; Processing & Copyright: Robert Gendler",
        copyright="Robert Gendler",
        thumbnail_url=None,
        starts="Spiral galaxy NGC 2841 lies about 46 million light-years away",
        ends="larger than our own Milky Way.",  # the "Follow APOD on" block is cut
    ),
    "ap170905.html": dict(
        date=dt.date(2017, 9, 5),
        title="Eclipse Shadow from Orbit",
        media_type="video",
        image_url="https://www.youtube.com/embed/XyZ123abcDE?rel=0",
        hd_url=None,
        credit="Video Credit: NASA, ISS Expedition 52; Music: Lunar Drift (Free Music Archive)",
        copyright=None,
        thumbnail_url="https://img.youtube.com/vi/XyZ123abcDE/0.jpg",
        starts="As the Moon passed between the Sun and the Earth,",
        ends="crossing clouds far below.",
    ),
    "ap240301.html": dict(
        date=dt.date(2024, 3, 1),
        title="The Rosette in Hydrogen and Oxygen",
        media_type="image",
        image_url=TEST + "image/2403/Rosette_1024.jpg",
        hd_url=TEST + "image/2403/Rosette_4096.jpg",
        credit="Image Credit & Copyright: Lena Okafor",
        copyright="Lena Okafor",
        thumbnail_url=None,
        starts="The Rosette Nebula is not the only cosmic cloud",
        ends="cleared the center of the nebula.",
    ),
    "ap240302.html": dict(
        date=dt.date(2024, 3, 2),
        title="Pillars of Creation from Webb",
        media_type="image",
        image_url=TEST + "image/2403/Pillars_Webb_1080.jpg",
        hd_url=TEST + "image/2403/Pillars_Webb_2400.png",
        credit="Image Credit: NASA, ESA, CSA, STScI; Processing: J. DePasquale (STScI)",
        copyright=None,
        thumbnail_url=None,
        starts="These towering columns of cold gas and dust",
        ends="The tallest column is about four light-years long.",
    ),
    "ap240303.html": dict(
        date=dt.date(2024, 3, 3),
        title="Video: A Spin Around Saturn",
        media_type="video",
        image_url="https://www.youtube.com/embed/dQw4AbCdEfG?rel=0",
        hd_url=None,
        credit="Video Credit & Copyright: Marco Rinaldi; Music: Ringworld (Nova Choir)",
        copyright="Marco Rinaldi",
        thumbnail_url="https://img.youtube.com/vi/dQw4AbCdEfG/0.jpg",
        starts="What would it look like to fly around Saturn?",
        ends="small moons drift past in the foreground.",
    ),
    "ap240304.html": dict(  # UTF-8 BOM, mouse-over swap, a stray Latin-1 byte in the credit
        date=dt.date(2024, 3, 4),
        title="Zodiacal Light over M\u00fcggelsee",
        media_type="image",
        image_url=TEST + "image/2403/Zodiacal_960.jpg",
        hd_url=TEST + "image/2403/Zodiacal_2048.jpg",
        credit="Image Credit & Copyright: Zo\u00eb Hartmann (Berlin Sky Club)",
        copyright="Zo\u00eb Hartmann",
        thumbnail_url=None,
        starts="After sunset in early spring,",
        ends="with Jupiter shining at its left.",
    ),
    "ap240305.html": dict(
        date=dt.date(2024, 3, 5),
        title="Aurora Time-Lapse over Troms\u00f8",
        media_type="video",
        image_url=TEST + "image/2403/AuroraTimelapse.mp4",
        hd_url=None,
        credit="Video Credit & Copyright: Ingrid Solberg",
        copyright="Ingrid Solberg",
        thumbnail_url=TEST + "image/2403/AuroraTimelapse_poster.jpg",
        starts="Curtains of green light ripple",
        ends="as the display reaches higher altitudes.",
    ),
    "ap240306.html": dict(
        date=dt.date(2024, 3, 6),
        title="Star Trails over a Lost Frame",
        media_type="image",
        image_url=TEST + "image/2403/Broken_1024.jpg",
        hd_url=TEST + "image/2403/Broken_2048.jpg",
        credit="Image Credit: U.S. National Park Service",
        copyright=None,
        thumbnail_url=None,
        starts="Stars trace concentric arcs",
        ends="which turns once a day beneath the sky.",
    ),
    "ap240307.html": dict(  # no <a> around the picture: no hd_url; bold inside the text
        date=dt.date(2024, 3, 7),
        title="A Thin Crescent Moon",
        media_type="image",
        image_url=TEST + "image/2403/MoonCrescent_900.jpg",
        hd_url=None,
        credit="Image Credit & Copyright: Ana Ruiz and Tom Becker",
        copyright="Ana Ruiz and Tom Becker",
        thumbnail_url=None,
        starts="A day-old crescent Moon hangs low in the twilight.",
        ends="among the first to explain this ashen glow correctly.",
    ),
    "ap240308.html": dict(
        date=dt.date(2024, 3, 8),
        title="Comet Pons-Brooks Near Andromeda",
        media_type="image",
        image_url=TEST + "image/2403/CometPons_1200.gif",
        hd_url=TEST + "image/2403/CometPons_3000.jpg",
        credit="Image Credit & Copyright: Dmitri Volkov",
        copyright="Dmitri Volkov",
        thumbnail_url=None,
        starts="Periodic comet 12P/Pons-Brooks",
        ends="pushed straight back by the solar wind.",
    ),
}


def check_day(day: ApodDay, want: dict, page_url: str) -> None:
    for key in (
        "date",
        "title",
        "media_type",
        "image_url",
        "hd_url",
        "credit",
        "copyright",
        "thumbnail_url",
    ):
        assert getattr(day, key) == want[key], key
    assert day.page_url == page_url
    assert day.explanation.startswith(want["starts"]), day.explanation[:120]
    assert day.explanation.endswith(want["ends"]), day.explanation[-120:]
    clean_text(day.explanation)


def clean_text(text: str) -> None:
    """No navigation, markup or stray whitespace in an explanation."""
    for junk in (
        "Tomorrow's picture",
        "Next picture",
        "Follow APOD",
        "Explanation:",
        "Authors & editors",
        "< |",
        "<a",
        "</",
        "\n",
        "  ",
        "Discover the cosmos",
        "APOD volunteer",
    ):
        assert junk not in text, junk
    assert text == text.strip()


@needs_shared
@pytest.mark.parametrize("name", sorted(SHARED_PAGES))
def test_shared_day_pages_parse_exactly(name: str) -> None:
    url = NASA + name
    day = parse_day((SITE / "apod" / name).read_bytes(), url)
    check_day(day, SHARED_PAGES[name], SHARED_PAGE_URL.get(name, url))


@needs_shared
def test_every_shared_page_is_covered() -> None:
    pages = {p.relative_to(SITE / "apod").as_posix() for p in (SITE / "apod").rglob("*.html")}
    assert pages == set(SHARED_PAGES) | set(SHARED_NOT_DAYS)


@needs_shared
@pytest.mark.parametrize("name", SHARED_NOT_DAYS)
def test_shared_non_day_pages_raise(name: str) -> None:
    with pytest.raises(NotAnApodPage) as err:
        parse_day((SITE / "apod" / name).read_bytes(), NASA + name)
    assert "\n" not in str(err.value) and "not an APOD day" in str(err.value)


@needs_shared
def test_shared_pages_parse_from_str_too() -> None:
    """Text input (already decoded, BOM kept) gives the same result as bytes."""
    raw = (SITE / "apod" / "ap200609.html").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert parse_day(raw.decode("utf-8"), NASA + "ap200609.html") == parse_day(
        raw, NASA + "ap200609.html"
    )


@needs_shared
def test_mirror_base_url_makes_absolute_urls() -> None:
    base = "http://www.star.ucl.ac.uk/~apod/apod/"
    day = parse_day((SITE / "apod" / "index.html").read_bytes(), base)
    assert day.page_url == base + "ap230211.html"
    assert day.image_url == base + "image/2302/magellanic1200.jpg"


@needs_shared
def test_api_explanations_clean_to_the_page_text() -> None:
    """The API's explanation (with page bottoms and notices) cleans to what the page parser reads."""
    months = {
        "ap950622.html": "1995-06_16-30",
        "ap200609.html": "2020-06",
        "ap220330.html": "2022-03",
        "ap220420.html": "2022-04",
        "ap230210.html": "2023-02",
        "index.html": "2023-02",
        "ap250324.html": "2025-03",
    }
    if not API_MONTHS.is_dir():
        pytest.skip("../shared/data/apod-api is absent")
    for name, month in months.items():
        day = parse_day((SITE / "apod" / name).read_bytes(), NASA + name)
        items = json.loads((API_MONTHS / f"{month}.json").read_text())
        item = next(x for x in items if x.get("date") == day.date.isoformat())
        assert clean_explanation(item["explanation"]) == day.explanation, name


@pytest.mark.parametrize("name", sorted(FIXTURE_PAGES))
def test_fixture_pages_of_several_eras(name: str) -> None:
    url = TEST + name
    check_day(parse_day((FIX / "apod" / name).read_bytes(), url), FIXTURE_PAGES[name], url)


def test_html_parser_gives_the_same_days() -> None:
    for page in _pages():
        url = "http://apod.test/apod/" + page.name
        try:
            want = parse_day(page.read_bytes(), url)
        except NotAnApodPage:
            with pytest.raises(NotAnApodPage):
                parse_day(page.read_bytes(), url, parser="html.parser")
            continue
        assert parse_day(page.read_bytes(), url, parser="html.parser") == want, page.name


def test_fixture_site_root_is_the_newest_day() -> None:
    day = parse_day((FIX / "apod" / "index.html").read_bytes(), TEST)
    assert day.date == dt.date(2024, 3, 8) and day.page_url == TEST + "ap240308.html"


# ------------------------------------------------------------------ indexes


@needs_shared
def test_archive_keeps_every_entry_despite_the_latin1_byte() -> None:
    raw = (SITE / "apod" / "archivepix.html").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    assert raw.count(b'<a href="ap') == 2963
    entries = parse_archive(raw, NASA + "archivepix.html")
    assert len(entries) == 2963
    assert entries[0] == (
        dt.date(2023, 2, 11),
        "Magellanic Clouds over Chile",
        NASA + "ap230211.html",
    )
    assert entries[-1] == (dt.date(2015, 1, 1), "Vela Supernova Remnant", NASA + "ap150101.html")
    by_date = {d: t for d, t, _ in entries}
    assert (
        by_date[dt.date(2017, 3, 14)]
        == "A Dark Winter Sky over Monfrag\u00fce National Park in Spain"
    )
    assert (
        by_date[dt.date(2017, 3, 13)] == "Saturn's Moon Pan from Cassini"
    )  # the line after the bad byte
    # the only day missing between the ends is a real gap (ap200609 links "Next picture: June 11")
    span = {dt.date(2015, 1, 1) + dt.timedelta(days=i) for i in range(2964)}
    assert span - set(by_date) == {dt.date(2020, 6, 10)}


def test_fixture_archive() -> None:
    entries = parse_archive(
        (FIX / "apod" / "archivepix.html").read_bytes(), TEST + "archivepix.html"
    )
    assert len(entries) == 15
    assert entries[3] == (
        dt.date(2024, 3, 5),
        "Aurora Time-Lapse over Troms\u00f8",
        TEST + "ap240305.html",
    )
    assert entries[-1][0] == dt.date(1995, 6, 25)


@needs_shared
def test_calendar_month() -> None:
    got = parse_calendar(
        (SITE / "apod" / "calendar" / "ca2301.html").read_bytes(), NASA + "calendar/ca2301.html"
    )
    assert len(got) == 31
    assert got[0] == (dt.date(2023, 1, 1), NASA + "ap230101.html")
    assert got[-1] == (dt.date(2023, 1, 31), NASA + "ap230131.html")
    # given the /apod/ folder instead of the page URL, the links still land there
    assert parse_calendar((SITE / "apod" / "calendar" / "ca2301.html").read_bytes(), NASA) == got


def test_fixture_calendar() -> None:
    got = parse_calendar(
        (FIX / "apod" / "calendar" / "ca2403.html").read_bytes(), TEST + "calendar/ca2403.html"
    )
    assert [d.day for d, _ in got] == list(range(1, 9))
    assert got[4][1] == TEST + "ap240305.html"


@needs_shared
def test_rss_feed() -> None:
    items = parse_rss((SITE / "apod.rss").read_bytes(), NASA)
    assert len(items) == 7
    # the first item links astropix.html; its thumbnail S_130502.jpg dates it
    assert items[0] == (dt.date(2013, 5, 2), "Saturn Hurricane", NASA + "ap130502.html")
    assert items[1] == (
        dt.date(2013, 5, 1),
        "Omega Centauri: The Brightest Globular Cluster",
        NASA + "ap130501.html",
    )
    assert items[-1][0] == dt.date(2013, 4, 26)
    with pytest.raises(NotAnApodPage):
        parse_day((SITE / "apod.rss").read_bytes(), NASA + "apod.rss")


def test_fixture_rss() -> None:
    items = parse_rss((FIX / "apod.rss").read_bytes(), TEST)
    assert [d.day for d, _, _ in items] == [8, 7, 6, 5, 4, 3, 2]
    assert items[0][2] == TEST + "ap240308.html"


# ------------------------------------------------------------------ helpers


def test_page_urls_and_dates() -> None:
    d = dt.date(1999, 12, 31)
    assert page_url_for(d, NASA) == NASA + "ap991231.html"
    assert page_url_for(d, "https://apod.nasa.gov/apod") == NASA + "ap991231.html"
    assert page_url_for(d, NASA + "astropix.html") == NASA + "ap991231.html"
    assert page_url_for(dt.date(2000, 1, 1), "http://www.star.ucl.ac.uk/~apod/apod/") == (
        "http://www.star.ucl.ac.uk/~apod/apod/ap000101.html"
    )
    assert date_from_url(NASA + "ap950616.html") == dt.date(1995, 6, 16)
    assert date_from_url(NASA + "ap000229.html") == dt.date(2000, 2, 29)
    assert date_from_url(NASA + "ap230230.html") is None
    assert date_from_url(NASA + "index.html") is None
    assert find_date("Today's Picture: June 22, 1995") == dt.date(1995, 6, 22)
    assert find_date("2023 February 11") == dt.date(2023, 2, 11)
    assert find_date("2023 February 30 then 2023 March 1") == dt.date(2023, 3, 1)
    assert find_date("no date here, Mars 2020") is None


def test_decode_keeps_utf8_and_latin1() -> None:
    assert decode_html("\ufeffabc") == "abc"
    assert (
        decode_html(b"\xef\xbb\xbfM\xc3\xbcggelsee M\xfcggelsee \x93q\x94")
        == "M\u00fcggelsee M\u00fcggelsee \u201cq\u201d"
    )


@pytest.mark.parametrize(
    ("credit", "owner"),
    [
        ("Image Credit & Copyright: Nicolas Tabbush", "Nicolas Tabbush"),
        ("Video Credit & Copyright: Mark Gee; Music: Tenderness (Dan Phillipson)", "Mark Gee"),
        ("Image Credit: NASA, ESA; Processing & Copyright: Robert Gendler", "Robert Gendler"),
        ("Image Credit and Copyright: A. Smith (Sky Club), B. Jones", "A. Smith, B. Jones"),
        ("Credit: NASA, ESA, Hubble", None),
        ("Credits: Illustration: Sam Moorfield; Text: Jayanne English", None),
        ("", None),
    ],
)
def test_copyright_from_credit(credit: str, owner: str | None) -> None:
    assert copyright_from_credit(credit) == owner


@pytest.mark.parametrize(
    ("raw", "owner"),
    [
        ("\nDanilo Pivato\n", "Danilo Pivato"),
        ("JL Dauvergne Music:", "JL Dauvergne"),
        ("Tamas Ladanyi\n(TWAN)", "Tamas Ladanyi"),
        ("Tristian McDonald;\nText: Tiffany Lewis \n(Michigan Tech U.)", "Tristian McDonald"),
        (
            "Anglo-Australian Telescope\nBoard\n\n Explanation:  \nLong winding spiral arms",
            "Anglo-Australian Telescope Board",
        ),
        ("  ", None),
        (None, None),
    ],
)
def test_clean_copyright(raw: str | None, owner: str | None) -> None:
    assert clean_copyright(raw) == owner


def test_clean_explanation_drops_notices_not_sentences() -> None:
    text = "Stars shine.  Two craters loom nearby: a small one and a big one."
    assert (
        clean_explanation(text)
        == "Stars shine. Two craters loom nearby: a small one and a big one."
    )
    body = "Stars shine over the hills of the desert on a clear and moonless night in spring."
    assert clean_explanation(body + "   Explore Your Universe: Random APOD Generator") == body
    text = "Stars shine.\r More stars.    Next picture: June 11  < | Archive | Index | >  Authors & editors: X"
    assert clean_explanation(text) == "Stars shine. More stars."
    text = (
        "It moves (0:50) fast.  Explosions (0:50) depict black holes expelling bubbles of hot gas."
    )
    assert (
        clean_explanation(text)
        == "It moves (0:50) fast. Explosions (0:50) depict black holes expelling bubbles of hot gas."
    )
    assert clean_explanation(None) == ""


# ------------------------------------------------------------------ robustness

GARBAGE: list[bytes | str] = [
    "",
    "   \n",
    "<html>",
    b"\x00\xff\xfe\x00garbage\x80\x81",
    b"\x89PNG\r\n\x1a\n" + bytes(range(256)),
    '{"date": "2024-01-01", "title": "json"}',
    "<b>Explanation:</b> text without a date or a title",
    "<title>APOD: 2024 January 1 - T</title><b>Explanation:</b> x",  # date and <title> only: parses
    "<h1>Astronomy Picture of the Day</h1><b>Explanation:</b>",
    "<b>" * 3000 + "Explanation:" + "</b>" * 3000,
    "<div>" * 5000 + "2024 January 1 <img src=x.jpg><b>T</b><b>Explanation:</b> x",
    "<center><h1>APOD</h1>2024 January 1<br><img><iframe></iframe><video></video>"
    "<object></object><embed><b></b><b>Credit:</b><b>Explanation:</b></center>",
    "<center>2024 February 30<br><img src=a.jpg></center><b>T</b><b>Explanation:</b>x",
    "<b>Explanation:</b><center>" + "x" * 10000,
]


@pytest.mark.parametrize("html", GARBAGE, ids=[f"garbage{i}" for i in range(len(GARBAGE))])
def test_garbage_raises_not_an_apod_page_or_parses(html: bytes | str) -> None:
    try:
        day = parse_day(html, "http://apod.test/apod/weird.html")
    except NotAnApodPage as exc:
        assert "\n" not in str(exc)
    else:
        assert isinstance(day, ApodDay) and day.title and day.date


def _pages() -> list[Path]:
    pages = sorted((FIX / "apod").glob("*.html"))
    if (SITE / "apod").is_dir():
        pages += sorted((SITE / "apod").rglob("*.html"))
    return pages


def test_mutilated_pages_never_crash() -> None:
    """Truncated, spliced and byte-flipped real and fixture pages: an ApodDay or NotAnApodPage."""
    rng = random.Random(1995)
    outcomes = {"parsed": 0, "rejected": 0}
    for page in _pages():
        raw = page.read_bytes()
        variants = [raw[: rng.randrange(len(raw))] for _ in range(6)]
        for _ in range(4):
            a, b = sorted(rng.sample(range(len(raw)), 2))
            variants.append(raw[:a] + raw[b:])
            flipped = bytearray(raw)
            for i in rng.sample(range(len(raw)), 20):
                flipped[i] = rng.randrange(256)
            variants.append(bytes(flipped))
        variants.append(re.sub(rb"</?(center|p|br|b)>", b"", raw, flags=re.I))
        for v in variants:
            try:
                day = parse_day(v, "http://apod.test/apod/" + page.name)
            except NotAnApodPage:
                outcomes["rejected"] += 1
            else:
                assert isinstance(day.date, dt.date) and day.title
                outcomes["parsed"] += 1
    assert outcomes["parsed"] and outcomes["rejected"]
