"""The official APOD API: quirks of real responses, and the client against the stand-in's API."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest

from astro_exp.apod.api import ApiItemError, ApodApiClient, parse_api_item
from astro_exp.net.session import HttpError, PoliteSession, RateLimited
from tests.support import SHARED_DATA
from tests.support.apod_site import FIXTURE_SITE
from tests.support.standin import ApodStandin

API = SHARED_DATA / "apod-api"
QUIRKS = json.loads((Path(__file__).parent / "fixtures" / "apod_api" / "quirks.json").read_text())
needs_api = pytest.mark.skipif(not API.is_dir(), reason="../shared/data/apod-api is absent")
NASA = "https://apod.nasa.gov/apod/"
JUNK = (
    "Follow APOD on",
    "Tomorrow's picture",
    "Next picture:",
    "< | Archive",
    "Authors & editors",
    "\r",
    "\n",
    "  ",
)


def assert_clean(text: str) -> None:
    for junk in JUNK:
        assert junk not in text, junk


# ------------------------------------------------------------------ real responses


@needs_api
def test_full_single_response() -> None:
    day = parse_api_item(json.loads((API / "kmoiseenko-apod_bot" / "apod.json").read_text()))
    assert day.date == dt.date(2017, 12, 21) and day.title == "Solstice Sun and Milky Way"
    assert (
        day.media_type == "image" and day.copyright == "Stefan Seip" and day.credit == "Stefan Seip"
    )
    assert day.image_url == NASA + "image/1712/WinterSolsticeMW_Seip1100c.jpg"
    assert day.hd_url == NASA + "image/1712/WinterSolsticeMW_Seip.jpg"
    assert day.page_url == NASA + "ap171221.html"
    assert day.explanation.startswith("Welcome to December's solstice")
    assert day.explanation.endswith("close to the center of the Milky Way.")


@needs_api
def test_count_response_missing_copyright_newlines_and_follow_tail() -> None:
    items = json.loads((API / "VenomBlood1207-nasa-apikey-usage" / "apod.json").read_text())
    m100, solstice, ngc = (parse_api_item(x) for x in items)
    assert m100.date == dt.date(2001, 2, 3) and m100.copyright is None and m100.credit == ""
    assert m100.hd_url == NASA + "image/0102/m100_hst_big.gif"
    assert solstice.copyright == "Danilo Pivato"  # was "\nDanilo Pivato\n"
    assert solstice.explanation.endswith(
        "in 43 separate, well-planned exposures from sunrise to sunset."
    )
    assert_clean(solstice.explanation)
    assert ngc.copyright == "Basudeb Chakrabarti" and ngc.title == "Spiral Galaxy NGC 6744"


@needs_api
def test_unpadded_dates() -> None:
    raw = json.loads((API / "tom-james-watson-apod-scraper" / "apod.json").read_text())
    assert raw[0]["date"] == "2015-1-3"
    days = [parse_api_item(x) for x in raw]
    assert len({d.date for d in days}) == 177
    assert days[0].date == dt.date(2015, 1, 3) and days[-1].date == dt.date(2016, 5, 2)
    assert all(d.page_url == NASA + f"ap{d.date:%y%m%d}.html" for d in days)
    gif = next(d for d in days if d.date == dt.date(2015, 1, 25))
    assert (
        gif.media_type == "image" and gif.image_url.endswith(".gif") and gif.hd_url.endswith(".mp4")
    )


@needs_api
def test_documented_quirks_and_fallback_object() -> None:
    readme = (API / "nasa-apod-api" / "README.md").read_text()
    block = next(b for b in re.findall(r"```jsoniq\n(.*?)```", readme, re.S) if "1997-01-21" in b)
    item = next(x for x in json.loads(block) if x["date"] == "1997-01-21")
    day = parse_api_item(item)
    assert day.title == "Journey to the Center of the Galaxy"  # was "... \r\nCredit:"
    assert "vast dust clouds, bright young stars" in day.explanation and "\r" not in day.explanation
    with pytest.raises(ApiItemError):  # no date: the service's fallback for missing assets
        parse_api_item(json.loads((API / "nasa-apod-api" / "default_apod_object.json").read_text()))


@needs_api
def test_whole_archive_parses_or_is_a_placeholder() -> None:
    """~11,000 real items (1995-2026): every one is a clean ApodDay or an ApiItemError."""
    parsed, placeholders = 0, 0
    for f in sorted((API / "archive-by-month" / "database").glob("*.json")):
        data = json.loads(f.read_text())
        for item in data if isinstance(data, list) else []:
            try:
                day = parse_api_item(item)
            except ApiItemError:
                placeholders += 1
                continue
            parsed += 1
            assert day.title and "\n" not in day.title
            assert_clean(day.explanation)
            assert day.copyright is None or (day.copyright and "\n" not in day.copyright)
            assert day.media_type in ("image", "video", "other")
    assert parsed > 9000 and placeholders > 1000


# ------------------------------------------------------------------ own quirk fixtures (always run)


def test_quirk_items() -> None:
    by_date = {}
    for item in QUIRKS:
        try:
            day = parse_api_item(item, "http://apod.test/apod/")
        except ApiItemError as exc:
            assert "placeholder" in str(exc) and "\n" not in str(exc)
            continue
        by_date[day.date] = day
    orion = by_date[dt.date(2023, 12, 28)]
    assert orion.title == "Orion Rising" and orion.copyright == "Priya Natarajan"
    assert orion.explanation.endswith("the brightest star of the night.")
    jupiter = by_date[dt.date(2023, 12, 29)]
    assert jupiter.media_type == "video" and jupiter.copyright == "J. Lefevre"
    assert (
        jupiter.thumbnail_url == "https://img.youtube.com/vi/Qw3rTy12345/0.jpg"
        and "\r" not in jupiter.explanation
    )
    other = by_date[dt.date(2023, 12, 30)]
    assert other.media_type == "other" and other.image_url is None and other.hd_url is None
    last = by_date[dt.date(2023, 12, 31)]
    assert (
        last.media_type == "image"
        and last.image_url == "http://apod.test/apod/image/2312/LastSky_800.jpg"
    )
    assert (
        last.explanation
        == "The last sky of the year shows the winter Milky Way over a snowy field."
    )
    pano = by_date[dt.date(2023, 1, 5)]  # "2023-1-5"
    assert pano.media_type == "video" and pano.thumbnail_url is None
    assert pano.page_url == "http://apod.test/apod/ap230105.html"
    with pytest.raises(ApiItemError):
        parse_api_item({"date": "2023-02-30", "title": "x"})
    with pytest.raises(ApiItemError):
        parse_api_item(["not", "an", "object"])  # type: ignore[arg-type]


# ------------------------------------------------------------------ the client


@pytest.fixture
def api():
    with ApodStandin([FIXTURE_SITE], api_items=QUIRKS, today=dt.date(2024, 3, 8)) as s:
        yield s


@pytest.fixture
def session():
    s = PoliteSession(rate_limit_per_host=200.0, backoff_factor=0.01, retries=2)
    yield s
    s.close()


def api_calls(standin: ApodStandin) -> list[str]:
    return [e[1] for e in standin.requests_log if e[1].startswith("/planetary/apod")]


def test_fetch_range_in_chunks(api, session) -> None:
    client = ApodApiClient(session, api.api_url, api_key="TESTKEY", pages_base_url=api.base_url)
    days = client.fetch_range(dt.date(2023, 1, 1), dt.date(2024, 3, 8), chunk_days=100)
    calls = api_calls(api)
    assert len(calls) == 5  # 433 days in chunks of 100
    assert all("api_key=TESTKEY" in c and "thumbs=true" in c for c in calls)
    assert [d.date for d in days] == sorted(d.date for d in days)
    assert len(days) == 5 + 8  # quirk days (placeholder skipped) + the fixture site's March 2024
    march = {d.date.day: d for d in days if d.date.month == 3 and d.date.year == 2024}
    assert (
        march[5].media_type == "other" and march[5].image_url is None
    )  # HTML5 video, as the API says
    assert march[3].thumbnail_url == "https://img.youtube.com/vi/dQw4AbCdEfG/0.jpg"
    assert march[1].image_url == api.base_url + "image/2403/Rosette_1024.jpg"
    assert march[4].copyright == "Zo\u00eb Hartmann" and march[2].copyright is None
    assert session.rate_remaining  # X-RateLimit-Remaining was read


def test_last_days_and_today_not_published_yet(api, session) -> None:
    client = ApodApiClient(session, api.api_url, api_key="K", today=lambda: dt.date(2024, 3, 8))
    assert [d.date.day for d in client.last_days(3)] == [6, 7, 8]
    # our clock is a day ahead of the service: the range ending "today" is refused, asked again without it
    ahead = ApodApiClient(session, api.api_url, api_key="K", today=lambda: dt.date(2024, 3, 9))
    assert [d.date.day for d in ahead.last_days(3)] == [7, 8]
    assert client.fetch_day(dt.date(2024, 3, 2)).title == "Pillars of Creation from Webb"


def test_key_from_environment(api, session, monkeypatch) -> None:
    monkeypatch.setenv("NASA_API_KEY", "ENVKEY")
    assert ApodApiClient(session, api.api_url).api_key == "ENVKEY"
    monkeypatch.delenv("NASA_API_KEY")
    assert ApodApiClient(session, api.api_url).api_key == "DEMO_KEY"


def test_api_errors_are_one_line(api, session) -> None:
    client = ApodApiClient(session, api.api_url, api_key="K", today=lambda: dt.date(2030, 1, 1))
    with pytest.raises(HttpError) as err:
        client.fetch_day(dt.date(2031, 1, 1))  # after the service's today: HTTP 400
    assert (
        err.value.status == 400
        and "Date must be between" in str(err.value)
        and "\n" not in str(err.value)
    )
    with pytest.raises(HttpError) as err:
        client.fetch_day(dt.date(2020, 1, 1))  # no such day on the stand-in: 404
    assert err.value.status == 404 and "K" not in str(err.value).split("api_key=")[-1][:3]
    with pytest.raises(Exception, match="swap them"):
        client.fetch_range(dt.date(2024, 3, 8), dt.date(2024, 3, 1))


def test_api_429_retry_after_then_quota_exhausted(session) -> None:
    with ApodStandin([FIXTURE_SITE], api_quota=3, today=dt.date(2024, 3, 8)) as s:
        s.fault("/planetary/apod", "429", times=1, retry_after=1)
        client = ApodApiClient(session, s.api_url, api_key="K", today=lambda: dt.date(2024, 3, 8))
        assert len(client.fetch_range(dt.date(2024, 3, 1), dt.date(2024, 3, 8))) == 8
        assert [e[2] for e in s.hits("/planetary/apod")] == [429, 200]
        client.fetch_day(dt.date(2024, 3, 1))
        client.fetch_day(dt.date(2024, 3, 2))  # quota 3 used: X-RateLimit-Remaining 0
        with pytest.raises(RateLimited) as err:
            client.fetch_day(dt.date(2024, 3, 3))
        assert "NASA_API_KEY" in str(err.value)
        assert len(s.hits("/planetary/apod")) == 4


def test_standin_api_matches_the_service(api, session) -> None:
    base = api.api_url
    r = session.get(base, params={"api_key": "K", "date": "2024-3-1"}).json()  # unpadded accepted
    assert (
        r["date"] == "2024-03-01"
        and r["hdurl"].endswith("Rosette_4096.jpg")
        and r["service_version"] == "v1"
    )
    assert session.get(base, params={"api_key": "K", "count": "3"}).json().__len__() == 3
    for bad in (
        {"date": "2024-13-01"},
        {"date": "1995-06-15"},
        {"count": "101"},
        {"start_date": "2024-03-05", "end_date": "2024-03-01"},
        {"date": "2024-03-01", "count": "2"},
    ):
        resp = session.get(base, params={"api_key": "K", **bad}, check=False)
        assert resp.status_code == 400 and resp.json()["code"] == 400, bad
    assert session.get(base, check=False).status_code == 403
    video = session.get(base, params={"api_key": "K", "date": "2024-03-03"}).json()
    assert "thumbnail_url" not in video
    video = session.get(
        base, params={"api_key": "K", "date": "2024-03-03", "thumbs": "True"}
    ).json()
    assert video["thumbnail_url"].startswith("https://img.youtube.com/vi/")
