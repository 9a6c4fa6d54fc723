"""``astro-exp bench-scrape`` (astro_exp/bench/scraper.py) on a tiny setting: every
figure is there, and a re-sync downloads no picture twice. The figures themselves are
benchmarks, read from the script's output, not asserted here."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pytest

from astro_exp.bench import scraper as bench_scrape
from tests.support.apod_site import FIXTURE_SITE, write_site
from tests.support.standin import ApodStandin

PHASE_KEYS = {
    "wall_s",
    "requests",
    "bytes",
    "not_modified",
    "pictures_downloaded",
    "picture_bytes",
    "pictures_stored",
    "days_skipped",
    "days_failed",
    "cache_hits",
}


def test_parse_throughput_both_parsers_agree() -> None:
    pages = bench_scrape.day_pages(FIXTURE_SITE)
    assert len(pages) >= 10  # the fixture site's day pages (index.html too)
    got = bench_scrape.parse_throughput(pages, min_seconds=0.01)
    for parser in ("lxml", "html.parser"):
        assert got[parser]["pages_s"] > 0 and got[parser]["pages_parsed"] >= len(pages)
    assert got["differing_pages"] == []


def test_sync_figures_and_resync_downloads_no_picture_twice(tmp_path: Path) -> None:
    got = bench_scrape.sync_figures(tmp_path, days=3, latency_s=0.01)
    first, resync = got["first_sync"], got["resync"]
    assert set(first) == set(resync) == PHASE_KEYS
    assert first["pictures_downloaded"] == first["pictures_stored"] == 3
    assert first["requests"] > 3 and first["bytes"] >= first["picture_bytes"] > 0
    assert resync["pictures_downloaded"] == 0 and resync["pictures_stored"] == 0
    assert resync["days_skipped"] == 3 and resync["requests"] < first["requests"]
    assert got["resync_no_picture_twice"] is True
    assert got["http_cache_pictures"] == 0
    assert got["image_store_bytes"] >= first["picture_bytes"]


def test_main_writes_table_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "scrape.json"
    args = argparse.Namespace(
        days=2,
        latency_ms=5.0,
        rate=1000.0,
        concurrency=2,
        parse_seconds=0.01,
        site=tmp_path / "no-such-site",
        out=out,
    )
    bench_scrape.report(args)
    printed = capsys.readouterr()
    assert "html.parser" in printed.out and "resync" in printed.out
    assert "generated stand-in pages" in printed.err  # the fallback says so
    figures = json.loads(out.read_text())
    assert figures["parse_pages_from"] == "generated stand-in pages" and figures["parse_pages"] == 2
    assert (
        figures["parse"]["lxml"]["pages_s"] > 0 and figures["parse"]["html.parser"]["pages_s"] > 0
    )
    assert figures["sync"]["days"] == 2 and figures["sync"]["resync_no_picture_twice"]


def test_standin_latency_and_totals(tmp_path: Path) -> None:
    import requests

    write_site(tmp_path, n_days=1, picture_size=(32, 24))
    with ApodStandin([tmp_path], latency=0.2) as s:
        t0 = time.monotonic()
        page = requests.get(s.base_url + "archivepix.html", timeout=5)
        assert time.monotonic() - t0 >= 0.2 and page.status_code == 200
        pic = next((tmp_path / "apod" / "image").rglob("*.jpg"))
        body = requests.get(
            s.base_url + pic.relative_to(tmp_path / "apod").as_posix(), timeout=5
        ).content
        s.latency = 0.0
        etag = requests.get(s.base_url + "archivepix.html", timeout=5).headers["ETag"]
        requests.get(s.base_url + "archivepix.html", headers={"If-None-Match": etag}, timeout=5)
        assert s.totals() == {
            "requests": 4,
            "bytes": 2 * len(page.content) + len(body),
            "not_modified": 1,
            "pictures": 1,
            "picture_bytes": len(body),
        }
        assert s.totals(since=2)["pictures"] == 0
    with pytest.raises(ValueError):
        ApodStandin([tmp_path], latency=-1)
