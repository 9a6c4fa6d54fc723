"""PoliteSession and ApodClient against the local stand-in: every fault, robots, rate limit, cache.

All HTTP goes to 127.0.0.1. Waits are kept short (Retry-After 1 s, timeouts 0.3 s).
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from astro_exp.apod.client import ApodClient
from astro_exp.apod.pages import NotAnApodPage, parse_day
from astro_exp.net.session import (
    DownloadError,
    HttpError,
    PoliteSession,
    RateLimited,
    RobotsDisallowed,
)
from tests.support import SHARED_DATA
from tests.support.apod_site import FIXTURE_SITE
from tests.support.standin import ApodStandin, Faults

SHARED_SITE = SHARED_DATA / "apod-site"
PIC = "/apod/image/2403/Rosette_4096.jpg"
PIC_BYTES = (FIXTURE_SITE / "apod" / "image" / "2403" / "Rosette_4096.jpg").read_bytes()


@pytest.fixture
def standin():
    with ApodStandin([FIXTURE_SITE]) as s:
        yield s


@pytest.fixture
def make_session(tmp_path: Path):
    made: list[PoliteSession] = []

    def make(**kw) -> PoliteSession:
        opts = dict(
            rate_limit_per_host=200.0,
            backoff_factor=0.01,
            timeout=5.0,
            retries=3,
            cache_dir=tmp_path / "http-cache",
        )
        opts.update(kw)
        s = PoliteSession(**opts)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def statuses(standin: ApodStandin, path: str) -> list[int]:
    return [e[2] for e in standin.hits(path)]


def leftovers(folder: Path) -> list[Path]:
    return sorted(folder.iterdir()) if folder.exists() else []


# ------------------------------------------------------------------ basics


def test_get_sends_user_agent_and_reads_robots_once(standin, make_session) -> None:
    s = make_session()
    s.get(standin.base_url + "ap240301.html")
    s.get(standin.base_url + "ap240302.html")
    assert [e[1] for e in standin.requests_log] == [
        "/robots.txt",
        "/apod/ap240301.html",
        "/apod/ap240302.html",
    ]
    ua = dict(standin.request_headers)["/apod/ap240301.html"]["User-Agent"]
    assert ua.startswith("astro-exp/") and "(+https://github.com/astro-exp/astro-exp)" in ua
    assert s.stats["requests"] == 3 and s.stats["retries"] == 0


def test_status_errors_are_one_line(standin, make_session) -> None:
    s = make_session(retries=1)
    with pytest.raises(HttpError) as err:
        s.get(standin.base_url + "ap990101.html")
    assert err.value.status == 404 and "\n" not in str(err.value) and "check" in str(err.value)
    assert s.get(standin.base_url + "ap990101.html", check=False).status_code == 404


# ------------------------------------------------------------------ faults


def test_429_retry_after_is_honoured(standin, make_session) -> None:
    standin.fault(PIC, "429", times=1, retry_after=1)
    s = make_session(backoff_factor=0.0)
    t0 = time.monotonic()
    resp = s.get(standin.root_url + PIC)
    waited = time.monotonic() - t0
    assert resp.content == PIC_BYTES
    assert waited >= 0.95, waited
    assert statuses(standin, PIC) == [429, 200] and s.stats["retries"] == 1


def test_huge_retry_after_gives_up_instead_of_hanging(standin, make_session) -> None:
    standin.fault(PIC, "429", retry_after=3600)
    s = make_session()
    t0 = time.monotonic()
    with pytest.raises(RateLimited) as err:
        s.get(standin.root_url + PIC)
    assert time.monotonic() - t0 < 2 and "\n" not in str(err.value) and "3600 s" in str(err.value)
    assert statuses(standin, PIC) == [429]


def test_500_then_success(standin, make_session) -> None:
    standin.fault(PIC, "500", times=2)
    s = make_session()
    assert s.get(standin.root_url + PIC).content == PIC_BYTES
    assert statuses(standin, PIC) == [500, 500, 200] and s.stats["retries"] == 2


def test_500_forever_fails_after_the_retries(standin, make_session) -> None:
    standin.fault(PIC, "503", retry_after=0)
    s = make_session(retries=2)
    with pytest.raises(HttpError) as err:
        s.get(standin.root_url + PIC)
    assert (
        err.value.status == 503
        and "after 2 retries" in str(err.value)
        and "\n" not in str(err.value)
    )
    assert statuses(standin, PIC) == [503, 503, 503]


def test_slow_answer_times_out_and_is_retried(standin, make_session) -> None:
    standin.fault(PIC, "slow", times=1, delay=3.0)
    s = make_session(timeout=0.3)
    t0 = time.monotonic()
    assert s.get(standin.root_url + PIC).content == PIC_BYTES
    assert time.monotonic() - t0 < 2.5  # did not wait for the slow answer (load-proof margin)
    assert s.stats["retries"] == 1


def test_dropped_connection_is_retried(standin, make_session) -> None:
    standin.fault(PIC, "reset", times=1)
    s = make_session()
    assert s.get(standin.root_url + PIC).content == PIC_BYTES
    assert s.stats["retries"] == 1


def test_timeouts_forever_fail_in_one_line(standin, make_session) -> None:
    standin.fault(PIC, "slow", delay=0.6)
    s = make_session(timeout=0.2, retries=1)
    with pytest.raises(HttpError) as err:
        s.get(standin.root_url + PIC)
    assert "timed out" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("cached", [True, False])
def test_truncated_body_is_a_download_error(standin, make_session, tmp_path, cached) -> None:
    standin.fault(PIC, "truncate")
    s = make_session(cache_dir=tmp_path / "c" if cached else None)
    dest = tmp_path / "store"
    with pytest.raises(DownloadError) as err:
        s.download(standin.root_url + PIC, dest)
    assert "cut off" in str(err.value) and "\n" not in str(err.value)
    assert leftovers(dest) == []


def test_wrong_content_type_is_a_download_error(standin, make_session, tmp_path) -> None:
    standin.fault(PIC, "wrong_type")
    s = make_session()
    with pytest.raises(DownloadError) as err:
        s.download(standin.root_url + PIC, tmp_path / "store")
    assert "text/html" in str(err.value) and "not image/" in str(err.value)
    assert leftovers(tmp_path / "store") == []
    standin.faults.clear()
    # the refused answer was not cached: the real picture comes next time
    assert s.download(standin.root_url + PIC, tmp_path / "store").size == len(PIC_BYTES)


@pytest.mark.parametrize("declare_length", [True, False])
def test_oversized_picture_is_refused_early(
    standin, make_session, tmp_path, declare_length
) -> None:
    standin.fault(PIC, "oversize", size=3_000_000, declare_length=declare_length)
    s = make_session()
    with pytest.raises(DownloadError) as err:
        s.download(standin.root_url + PIC, tmp_path / "store", max_bytes=100_000)
    assert "100,000" in str(err.value) and "max_bytes" in str(err.value)
    assert leftovers(tmp_path / "store") == []
    assert s.stats["bytes_downloaded"] < 3_000_000


def test_missing_picture_is_a_download_error(standin, make_session, tmp_path) -> None:
    s = make_session()
    with pytest.raises(DownloadError) as err:
        s.download(standin.base_url + "image/2403/nothing.jpg", tmp_path / "store")
    assert err.value.status == 404 and "\n" not in str(err.value)
    standin.fault(PIC, "404")
    with pytest.raises(DownloadError):
        s.download(standin.root_url + PIC, tmp_path / "store")
    assert leftovers(tmp_path / "store") == []


def test_download_writes_a_complete_temp_file(standin, make_session, tmp_path) -> None:
    s = make_session()
    got = s.download(standin.root_url + PIC, tmp_path / "store")
    assert got.path.parent == tmp_path / "store" and got.path.read_bytes() == PIC_BYTES
    assert got.size == len(PIC_BYTES) and got.content_type == "image/jpeg"
    import hashlib

    assert got.sha256 == hashlib.sha256(PIC_BYTES).hexdigest()


# ------------------------------------------------------------------ robots, rate, concurrency


def test_robots_disallow(standin, make_session) -> None:
    standin.robots_txt = "User-agent: *\nDisallow: /apod/image/\n"
    s = make_session()
    assert s.get(standin.base_url + "ap240301.html").status_code == 200
    with pytest.raises(RobotsDisallowed) as err:
        s.get(standin.root_url + PIC)
    assert "robots.txt" in str(err.value) and "\n" not in str(err.value)
    assert standin.hits(PIC) == []
    # a group naming us is honoured too, and respect_robots=False is the explicit way out
    standin.robots_txt = "User-agent: *\nAllow: /\n\nUser-agent: astro-exp\nDisallow: /apod/\n"
    with pytest.raises(RobotsDisallowed):
        make_session().get(standin.base_url + "ap240301.html")
    assert make_session(respect_robots=False).get(standin.root_url + PIC).status_code == 200


def test_rate_limit_spaces_requests(standin, make_session) -> None:
    s = make_session(rate_limit_per_host=5.0, cache_dir=None)
    t0 = time.monotonic()
    for d in range(1, 5):
        s.get(standin.base_url + f"ap24030{d}.html")  # + robots.txt: 5 requests
    assert s.stats["requests"] == 5
    assert time.monotonic() - t0 >= 0.8


def test_concurrency_is_bounded(standin, make_session) -> None:
    paths = [f"/apod/ap24030{d}.html" for d in range(1, 5)]
    for p in paths:
        standin.fault(p, "slow", delay=0.3)
    s = make_session(max_concurrency=2, cache_dir=None)
    s.get(standin.root_url + "/robots.txt")
    t0 = time.monotonic()
    got = list(s.map(lambda p: s.get(standin.root_url + p).status_code, paths))
    elapsed = time.monotonic() - t0
    assert got == [200] * 4
    assert standin.slow_peak == 2  # two at a time, never more (the server counts them)
    assert elapsed >= 0.55, elapsed  # so at least two rounds of 0.3 s


# ------------------------------------------------------------------ cache: nothing twice


def test_downloads_go_past_the_cache(standin, make_session, tmp_path) -> None:
    # the caller keeps a picture (the image store); the HTTP cache never holds one, so
    # "nothing twice" for pictures is the catalog's job (tests/test_http_cache.py)
    cache = tmp_path / "shared-cache"
    first = make_session(cache_dir=cache)
    a = first.download(standin.root_url + PIC, tmp_path / "store")
    assert first.stats["bytes_downloaded"] >= len(PIC_BYTES)
    rerun = make_session(cache_dir=cache)  # a re-run: new session, same cache folder
    c = rerun.download(standin.root_url + PIC, tmp_path / "store")
    assert c.sha256 == a.sha256 and c.path.read_bytes() == PIC_BYTES
    assert [(e[2], e[3]) for e in standin.hits(PIC)] == [(200, len(PIC_BYTES))] * 2
    assert statuses(standin, "/robots.txt") == [200, 304]  # robots.txt: cached, revalidated


def test_revalidation_gets_304_without_the_body(standin, make_session) -> None:
    s = make_session()
    url = standin.base_url + "ap240301.html"
    body = s.get(url).content
    again = s.get(url)
    assert again.from_cache and again.content == body
    assert [(e[2], e[3]) for e in standin.hits("/apod/ap240301.html")] == [
        (200, len(body)),
        (304, 0),
    ]
    sent = [h for p, h in standin.request_headers if p == "/apod/ap240301.html"][-1]
    assert "If-None-Match" in sent or "If-Modified-Since" in sent
    assert s.stats["not_modified"] == 1


def test_pages_are_revalidated_each_run(standin, make_session) -> None:
    s = make_session()
    url = standin.base_url + "archivepix.html"
    first = s.get(url).content
    assert s.get(url).content == first
    assert statuses(standin, "/apod/archivepix.html") == [200, 304]


def test_rate_limit_remaining_zero_stops_requests(make_session) -> None:
    with ApodStandin([FIXTURE_SITE], api_quota=2) as s:
        sess = make_session(cache_dir=None)
        for _ in range(2):
            sess.get(s.api_url, params={"api_key": "K", "date": "2024-03-01"})
        assert sess.rate_remaining[s.root_url.split("//")[1]] == 0
        with pytest.raises(RateLimited) as err:
            sess.get(s.api_url, params={"api_key": "K", "date": "2024-03-02"})
        assert "X-RateLimit-Remaining: 0" in str(err.value) and "\n" not in str(err.value)
        assert len(s.hits("/planetary/apod")) == 2


# ------------------------------------------------------------------ the HTML client


def test_client_lists_dates_from_the_archive(standin, make_session) -> None:
    c = ApodClient(make_session(), standin.base_url)
    last3 = c.list_dates(last_days=3)
    assert last3 == [
        (dt.date(2024, 3, d), standin.base_url + f"ap24030{d}.html") for d in (6, 7, 8)
    ]
    assert [d for d, _ in c.list_dates(start=dt.date(2001, 1, 1), end=dt.date(2015, 1, 1))] == [
        dt.date(2001, 7, 4),
        dt.date(2009, 5, 20),
        dt.date(2010, 4, 1),
        dt.date(2014, 4, 12),
    ]
    assert len(c.list_dates()) == 15
    assert c.list_dates(start=dt.date(2030, 1, 1)) == []
    with pytest.raises(Exception, match="either last_days or start_date"):
        c.list_dates(start=dt.date(2024, 1, 1), last_days=3)
    with pytest.raises(Exception, match="swap them"):
        c.list_dates(start=dt.date(2024, 3, 8), end=dt.date(2024, 3, 1))


def test_client_fetches_listed_days_without_a_404(standin, make_session) -> None:
    c = ApodClient(make_session(), standin.base_url)
    days = [c.fetch_day(d, u) for d, u in c.list_dates()]
    assert len(days) == 15 and {d.media_type for d in days} == {"image", "video", "other"}
    assert all(e[2] in (200, 304) for e in standin.requests_log)
    assert c.newest().date == dt.date(2024, 3, 8)
    with pytest.raises(HttpError):
        c.fetch_day(dt.date(2024, 2, 29))


def test_client_falls_back_to_calendar_then_rss(make_session) -> None:
    faults = Faults().add("/apod/archivepix.html", "500")
    with ApodStandin([FIXTURE_SITE], faults) as s:
        c = ApodClient(make_session(retries=1, cache_dir=None), s.base_url)
        got = c.list_dates(last_days=8)
        assert [d.day for d, _ in got] == list(range(1, 9))
        assert s.hits("/apod/calendar/ca2403.html")
        s.fault("/apod/calendar/ca2403.html", "404")
        c2 = ApodClient(make_session(retries=1, cache_dir=None), s.base_url)
        assert [d.day for d, _ in c2.list_dates(last_days=8)] == [
            2,
            3,
            4,
            5,
            6,
            7,
            8,
        ]  # RSS has 7 items
        assert s.hits("/apod.rss")


def test_client_reads_the_full_archive_only_when_needed(make_session, tmp_path) -> None:
    site = tmp_path / "site" / "apod"
    site.mkdir(parents=True)
    (site / "archivepix.html").write_text(
        '<b>2024 March 08:  <a href="ap240308.html">New</a><br></b>'
        '<a href="archivepixFull.html">APOD Full Archive</a>'
    )
    (site / "archivepixFull.html").write_text(
        '2024 March 08:  <a href="ap240308.html">New</a><br>'
        '1995 June 16:  <a href="ap950616.html">Neutron Star Earth</a><br>'
    )
    with ApodStandin([tmp_path / "site"]) as s:
        c = ApodClient(make_session(), s.base_url)
        assert [d for d, _ in c.list_dates(last_days=1)] == [dt.date(2024, 3, 8)]
        assert not s.hits("/apod/archivepixFull.html")
        assert [d for d, _ in c.list_dates(start=dt.date(1995, 1, 1))] == [
            dt.date(1995, 6, 16),
            dt.date(2024, 3, 8),
        ]
        assert s.hits("/apod/archivepixFull.html")


@pytest.mark.skipif(
    not (SHARED_SITE / "apod").is_dir(), reason="../shared/data/apod-site is absent"
)
def test_client_serves_shared_pages_through_the_standin(make_session) -> None:
    with ApodStandin([FIXTURE_SITE, SHARED_SITE]) as s:
        c = ApodClient(make_session(), s.base_url)
        for name in ("ap950622.html", "ap200609.html", "ap250324.html"):
            raw = (SHARED_SITE / "apod" / name).read_bytes()
            want = parse_day(raw, s.base_url + name)
            assert c.fetch_day(want.date) == want
        with pytest.raises(NotAnApodPage):
            c.fetch_day(dt.date(2023, 2, 10), s.base_url + "lib/about_apod.html")


# ------------------------------------------------------------------ the stand-in itself


def test_standin_etag_head_and_faults(standin) -> None:
    url = standin.root_url + PIC
    r = requests.get(url, timeout=5)
    assert (
        r.headers["Content-Type"] == "image/jpeg"
        and r.headers["ETag"]
        and r.headers["Last-Modified"]
    )
    assert (
        requests.get(url, headers={"If-None-Match": r.headers["ETag"]}, timeout=5).status_code
        == 304
    )
    assert (
        requests.get(
            url, headers={"If-Modified-Since": r.headers["Last-Modified"]}, timeout=5
        ).status_code
        == 304
    )
    h = requests.head(url, timeout=5)
    assert (
        h.status_code == 200
        and int(h.headers["Content-Length"]) == len(PIC_BYTES)
        and not h.content
    )
    assert (
        requests.get(standin.base_url, timeout=5).text
        == (FIXTURE_SITE / "apod" / "index.html").read_text()
    )
    assert requests.get(standin.root_url + "/apod/../../etc/passwd", timeout=5).status_code == 404
    with pytest.raises(ValueError, match="unknown fault kind"):
        standin.fault(PIC, "explode")


def test_standin_command_line() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.standin", "--port", "0", "--no-shared"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        base = line.split()[2]
        assert base.startswith("http://127.0.0.1:") and base.endswith("/apod/")
        assert "Comet Pons-Brooks" in requests.get(base, timeout=5).text
    finally:
        proc.terminate()
        proc.wait(timeout=5)
