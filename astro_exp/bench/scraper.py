"""APOD scraper figures (``astro-exp bench-scrape``): page parsing and a first sync against a
re-sync, a table and JSON.

    astro-exp bench-scrape                                  # 30 days, 50 ms per answer
    astro-exp bench-scrape days=60 latency_ms=100 out=scrape.json

- ``parse/<parser>/pages_s``: ``parse_day`` over the real APOD pages in
  ``../shared/data/apod-site`` (the generated stand-in pages when that folder is absent),
  with BeautifulSoup's ``lxml`` parser against ``html.parser``;
- ``first_sync`` / ``resync``: the real scraper (``astro_exp.apod.scrape.scrape``) over
  ``days`` days of a generated site served by the local stand-in
  (:mod:`astro_exp.apod.standin`) with ``latency_ms`` added to every answer, into an empty
  data folder, then the same range again: wall time, HTTP requests and bytes the stand-in
  served, pictures downloaded and stored. A re-sync must download no picture
  (``resync_no_picture_twice``); the HTTP cache must hold none (``http_cache_pictures``:
  pictures live in the image store only).

Everything runs on 127.0.0.1; nothing goes to the internet.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from astro_exp.apod.pages import NotAnApodPage, parse_day
from astro_exp.apod.scrape import ScrapeRequest, scrape
from astro_exp.apod.site_gen import write_site
from astro_exp.apod.standin import ApodStandin
from astro_exp.errors import ConfigError

# the real pages beside a checkout (``site: null``); a user's machine has none: the bench then
# times the generated pages
SHARED_SITE = Path(__file__).resolve().parents[3] / "shared" / "data" / "apod-site"


PARSERS = ("lxml", "html.parser")
PAGE_BASE = "https://apod.nasa.gov/apod/"


# ------------------------------------------------------------------------------------ parsing


def day_pages(site: Path) -> list[tuple[str, bytes]]:
    """(name, bytes) of the day pages under ``site/apod`` (apYYMMDD.html and the site root).

    A page that is a byte copy of one already listed (a generated root) is left out.
    """
    folder = site / "apod"
    files = sorted(folder.glob("ap[0-9][0-9][0-9][0-9][0-9][0-9].html")) + [folder / "index.html"]
    pages, seen = [], set()
    for f in files:
        if not f.is_file():
            continue
        data = f.read_bytes()
        if data in seen:
            continue
        seen.add(data)
        try:
            parse_day(data, PAGE_BASE + f.name)
        except NotAnApodPage:
            continue
        pages.append((f.name, data))
    return pages


def parse_throughput(
    pages: list[tuple[str, bytes]], min_seconds: float = 2.0, parsers: tuple[str, ...] = PARSERS
) -> dict[str, Any]:
    """Pages per second of ``parse_day`` per BeautifulSoup parser, and whether they agree.

    The parsers take turns, one pass over the pages each, until each has run ``min_seconds``:
    a change in the machine's load (other jobs) then hits both alike.
    """
    results = {
        p: [parse_day(data, PAGE_BASE + name, parser=p) for name, data in pages] for p in parsers
    }
    spent = dict.fromkeys(parsers, 0.0)
    done = dict.fromkeys(parsers, 0)
    while min(spent.values()) < min_seconds:
        for parser in parsers:
            t0 = time.perf_counter()
            for name, data in pages:
                parse_day(data, PAGE_BASE + name, parser=parser)
            spent[parser] += time.perf_counter() - t0
            done[parser] += len(pages)
    out: dict[str, Any] = {
        p: {
            "pages_s": round(done[p] / spent[p], 1),
            "pages_parsed": done[p],
            "seconds": round(spent[p], 3),
        }
        for p in parsers
    }
    first = parsers[0]
    out["differing_pages"] = sorted(
        {
            name
            for p in parsers[1:]
            for (name, _), a, b in zip(pages, results[first], results[p], strict=True)
            if a != b
        }
    )
    return out


# ------------------------------------------------------------------------------------ syncing


def _folder_bytes(folder: Path) -> int:
    """Bytes of the files under ``folder`` (0 when it is absent)."""
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) if folder.is_dir() else 0


def cached_pictures(cache_dir: Path) -> int:
    """How many answers in the requests-cache folder ``cache_dir`` are pictures (should be 0)."""
    import requests_cache

    if not cache_dir.is_dir():
        return 0
    session = requests_cache.CachedSession(
        cache_name=str(cache_dir), backend="filesystem", serializer="pickle"
    )
    try:
        return sum(
            1
            for r in session.cache.responses.values()
            if r.headers.get("Content-Type", "").lower().startswith(("image/", "video/"))
        )
    finally:
        session.close()


def _phase(
    standin: ApodStandin, req: ScrapeRequest, data_dir: Path, http: dict[str, Any]
) -> dict[str, Any]:
    """One scrape of ``req`` into ``data_dir``: its wall time, what the stand-in served
    meanwhile and what the scraper stored."""
    mark = len(standin.requests_log)
    t0 = time.perf_counter()
    summary = scrape(req, data_dir, http=http, progress=False)
    wall = time.perf_counter() - t0
    served = standin.totals(since=mark)
    return {
        "wall_s": round(wall, 3),
        "requests": served["requests"],
        "bytes": served["bytes"],
        "not_modified": served["not_modified"],
        "pictures_downloaded": served["pictures"],
        "picture_bytes": served["picture_bytes"],
        "pictures_stored": summary.new,
        "days_skipped": summary.skipped,
        "days_failed": summary.n_failed,
        "cache_hits": summary.cache_hits,
    }


def sync_figures(
    workdir: Path,
    days: int = 30,
    latency_s: float = 0.05,
    rate: float = 1000.0,
    concurrency: int = 4,
) -> dict[str, Any]:
    """First sync and re-sync of ``days`` generated days over the stand-in (site + data under ``workdir``).

    Args:
        workdir: an empty folder for the generated site and the scraper's data folder.
        days: days of the generated site; latency_s: the stand-in's delay per answer;
        rate: the scraper's requests/s per host; concurrency: its threads.

    Returns:
        ``first_sync`` and ``resync`` (each :func:`_phase`'s figures), whether the re-sync
        downloaded no picture, and the HTTP cache's and the image store's sizes.
    """
    dates = write_site(workdir / "site", n_days=days)
    data_dir = workdir / "data"
    http = {
        "rate_limit_per_host": rate,
        "max_concurrency": concurrency,
        "retries": 2,
        "backoff_factor": 0.05,
        "timeout": 10.0 + 4 * latency_s,
    }
    with ApodStandin([workdir / "site"], latency=latency_s) as standin:
        req = ScrapeRequest(base_url=standin.base_url, start_date=dates[0], end_date=dates[-1])
        first = _phase(standin, req, data_dir, http)
        resync = _phase(standin, req, data_dir, http)
    cache_dir = data_dir / "http_cache"
    return {
        "days": days,
        "latency_ms": round(latency_s * 1000, 1),
        "rate_limit_per_host": rate,
        "max_concurrency": concurrency,
        "first_sync": first,
        "resync": resync,
        "resync_no_picture_twice": resync["pictures_downloaded"] == 0,
        "http_cache_bytes": _folder_bytes(cache_dir),
        "http_cache_pictures": cached_pictures(cache_dir),
        "image_store_bytes": _folder_bytes(data_dir / "images"),
    }


# ------------------------------------------------------------------------------------ report


def run(args: Any) -> dict[str, Any]:
    """All figures for the settings (conf/bench_scrape.yaml: days, latency_ms, rate,
    concurrency, parse_seconds, site), given as attributes."""
    result: dict[str, Any] = {"load_avg_1m": round(os.getloadavg()[0], 2), "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="bench-scrape-") as tmp:
        work = Path(tmp)
        result["sync"] = sync_figures(
            work, args.days, args.latency_ms / 1000.0, args.rate, args.concurrency
        )
        pages = day_pages(args.site) if (args.site / "apod").is_dir() else []
        if pages:
            result["parse_pages_from"] = str(args.site)
        else:
            print(
                f"real-page parsing skipped: no APOD day pages in {args.site} (../shared/data is "
                "absent on a user's machine); timing the generated stand-in pages instead",
                file=sys.stderr,
            )
            pages = day_pages(work / "site")
            result["parse_pages_from"] = "generated stand-in pages"
        result["parse_pages"] = len(pages)
        result["parse"] = parse_throughput(pages, args.parse_seconds)
    return result


def table(result: dict[str, Any]) -> str:
    """The figures as a small text table."""
    lines = [
        f"parse_day over {result['parse_pages']} pages ({result['parse_pages_from']})",
        f"  {'parser':<12} {'pages/s':>10}",
    ]
    parse = result["parse"]
    for name in PARSERS:
        if name in parse:
            lines.append(f"  {name:<12} {parse[name]['pages_s']:>10.1f}")
    if parse.get("differing_pages"):
        lines.append("  parsers disagree on: " + ", ".join(parse["differing_pages"]))
    s = result["sync"]
    lines += [
        "",
        f"sync of {s['days']} days over the stand-in, {s['latency_ms']:g} ms per answer, "
        f"{s['max_concurrency']} threads, {s['rate_limit_per_host']:g} req/s per host",
        f"  {'':<11} {'wall s':>8} {'requests':>9} {'bytes':>11} {'304':>5} {'pictures':>9} {'stored':>7}",
    ]
    for name in ("first_sync", "resync"):
        p = s[name]
        lines.append(
            f"  {name:<11} {p['wall_s']:>8.2f} {p['requests']:>9} {p['bytes']:>11,} "
            f"{p['not_modified']:>5} {p['pictures_downloaded']:>9} {p['pictures_stored']:>7}"
        )
    lines.append(
        f"  re-sync downloads no picture twice: {'yes' if s['resync_no_picture_twice'] else 'NO'}; "
        f"HTTP cache {s['http_cache_bytes']:,} bytes holding {s['http_cache_pictures']} pictures, "
        f"image store {s['image_store_bytes']:,} bytes"
    )
    lines.append(f"(load average {result['load_avg_1m']} on {result['cpus']} CPUs)")
    return "\n".join(lines)


def report(args: Any) -> dict[str, Any]:
    """Measure, print the table (and the JSON unless ``out`` is given), write ``out``.

    Args:
        args: the settings of :func:`run` as attributes, and ``out`` (a path or None).

    Returns:
        The figures.
    """
    if args.days < 1:
        raise ConfigError("days must be at least 1")
    result = run(args)
    print(table(result))
    text = json.dumps(result, indent=2)
    if getattr(args, "out", None):
        Path(args.out).write_text(text + "\n")
    else:
        print(text)
    return result
