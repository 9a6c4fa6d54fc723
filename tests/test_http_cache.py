"""Pictures are stored once: in the image store, never in the on-disk HTTP cache.

Pages and API answers stay cached and revalidated (304); downloads bypass the cache, and
a re-scrape downloads no picture because the catalog (an "ok" row with its file in the
store) says the day is done. All HTTP goes to the local stand-in on 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import requests_cache

from astro_exp.apod.scrape import ScrapeRequest, scrape
from astro_exp.data.catalog import Catalog, catalog_path
from astro_exp.data.store import ImageStore
from astro_exp.net.session import PoliteSession
from tests.support.apod_site import FIXTURE_SITE, write_site
from tests.support.standin import ApodStandin

PIC = "/apod/image/2403/Rosette_4096.jpg"
PIC_BYTES = (FIXTURE_SITE / "apod" / "image" / "2403" / "Rosette_4096.jpg").read_bytes()
PAGE = "/apod/ap240301.html"
FAST_HTTP = {"rate_limit_per_host": 500.0, "retries": 2, "backoff_factor": 0.01, "timeout": 5.0}


def cache_contains(cache_dir: Path, url: str) -> bool:
    """Whether the requests-cache folder ``cache_dir`` holds an answer for ``url``."""
    session = requests_cache.CachedSession(
        cache_name=str(cache_dir), backend="filesystem", serializer="pickle"
    )
    try:
        return session.cache.contains(url=url)
    finally:
        session.close()


def cached_content_types(cache_dir: Path) -> list[str]:
    session = requests_cache.CachedSession(
        cache_name=str(cache_dir), backend="filesystem", serializer="pickle"
    )
    try:
        return [r.headers.get("Content-Type", "") for r in session.cache.responses.values()]
    finally:
        session.close()


@pytest.fixture
def standin():
    with ApodStandin([FIXTURE_SITE]) as s:
        yield s


def test_download_bypasses_the_cache_pages_stay_cached(standin, tmp_path: Path) -> None:
    cache = tmp_path / "http-cache"
    with PoliteSession(rate_limit_per_host=500.0, cache_dir=cache) as s:
        a = s.download(standin.root_url + PIC, tmp_path / "store")
        b = s.download(standin.root_url + PIC, tmp_path / "store")
        page = s.get(standin.root_url + PAGE).content
        assert s.get(standin.root_url + PAGE).content == page
        assert a.path.read_bytes() == b.path.read_bytes() == PIC_BYTES
        assert s.stats["bytes_downloaded"] >= 2 * len(PIC_BYTES)
        assert s.stats["not_modified"] >= 1  # the page was revalidated, not fetched again
    # each download went to the network (the caller keeps the file, not the cache) ...
    assert [(e[2], e[3]) for e in standin.hits(PIC)] == [(200, len(PIC_BYTES))] * 2
    # ... while the page is cached and revalidated with a conditional request
    assert [e[2] for e in standin.hits(PAGE)] == [200, 304]
    sent = [h for p, h in standin.request_headers if p == PAGE][-1]
    assert "If-None-Match" in sent or "If-Modified-Since" in sent
    assert not cache_contains(cache, standin.root_url + PIC)
    assert cache_contains(cache, standin.root_url + PAGE)
    assert not any(t.startswith("image/") for t in cached_content_types(cache))


def test_a_picture_fetched_with_get_is_not_cached_either(standin, tmp_path: Path) -> None:
    cache = tmp_path / "http-cache"
    with PoliteSession(rate_limit_per_host=500.0, cache_dir=cache) as s:
        assert s.get(standin.root_url + PIC).content == PIC_BYTES
        assert s.get(standin.root_url + PIC).content == PIC_BYTES
    assert [e[2] for e in standin.hits(PIC)] == [200, 200]
    assert not cache_contains(cache, standin.root_url + PIC)


def test_scrape_stores_each_picture_once_and_a_rescrape_downloads_none(tmp_path: Path) -> None:
    dates = write_site(tmp_path / "site", end=dt.date(2024, 5, 4), n_days=4, picture_size=(64, 48))
    data = tmp_path / "data"
    with ApodStandin([tmp_path / "site"]) as s:
        req = ScrapeRequest(base_url=s.base_url, start_date=dates[0], end_date=dates[-1])
        first = scrape(req, data, http=FAST_HTTP, progress=False)
        assert first.new == 4 and s.totals()["pictures"] == 4
        with Catalog(catalog_path(data)) as cat:
            rows = cat.rows(["apod"])
        assert [r["status"] for r in rows] == ["ok"] * 4
        cache = data / "http_cache"
        # (i) the picture bytes live in the image store only; the day pages are cached
        for r in rows:
            assert not cache_contains(cache, r["image_url"]), r["image_url"]
            assert cache_contains(cache, r["page_url"])
        assert not any(t.startswith("image/") for t in cached_content_types(cache))
        picture_bytes = s.totals()["picture_bytes"]
        store = ImageStore(data)
        assert sum(store.abspath(r["path"]).stat().st_size for r in rows) == picture_bytes

        # (ii) a re-scrape of the range asks for no picture: the catalog says the days are done
        mark = len(s.requests_log)
        again = scrape(req, data, http=FAST_HTTP, progress=False)
        assert again.new == 0 and again.skipped == 4
        assert s.totals(since=mark)["pictures"] == 0

        # the catalog, not a cache, decides: a stored file that went missing is fetched again
        store.abspath(rows[0]["path"]).unlink()
        mark = len(s.requests_log)
        fixed = scrape(req, data, http=FAST_HTTP, progress=False)
        assert fixed.new == 1 and s.totals(since=mark)["pictures"] == 1
        assert store.abspath(rows[0]["path"]).is_file()
