"""Gallery response time with a large catalog: the web app's paging must stay fast
(``python scripts/bench_web.py``; JSON on stdout).

    python scripts/bench_web.py                     # 20,000 rows
    python scripts/bench_web.py rows=50000 repeat=30

Builds a demo catalog (rendered pictures, random predictions) in a temporary folder,
then times whole gallery responses (query + count + template) through the WSGI app for
typical filters, sorts and a deep page. Prints JSON: per case the median and p95 in ms
and, as the baseline of the same run, the ratio to the same request on a 500-row catalog
(1.0 = no slower with 40x the rows). Thumbnails are timed too: first request (made and
cached) vs later requests (served from the cache). The older ``--rows N --repeat N`` still work.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

from omegaconf import DictConfig

from astro_exp.cli.command import command, legacy_flags
from astro_exp.errors import AstroExpError

_LEGACY = legacy_flags({"--rows": "rows", "--repeat": "repeat"})

CASES = {
    "first page (date)": "/",
    "deep page (date)": "/?page={deep}",
    "sort by confidence": "/?sort=confidence&order=asc",
    "sort by anomaly score": "/?sort=anomaly",
    "predicted label": "/?label=galaxy",
    "catalog label": "/?truth=nebula",
    "anomalies only": "/?anomalies=1",
    "date range": "/?date_from=2000-01-01&date_to=2005-12-31",
    "confidence range": "/?conf_min=0.4&conf_max=0.6",
    "text search": "/?q=Rings+123",
    "api page": "/api/pictures?per_page=48&sort=confidence",
}


def _time(client, url: str, repeat: int) -> list[float]:
    out = []
    client.get(url)  # warm: SQLite page cache, Jinja templates
    for _ in range(repeat):
        t0 = time.perf_counter()
        resp = client.get(url)
        out.append((time.perf_counter() - t0) * 1000)
        if resp.status_code != 200:
            raise AstroExpError(f"{url}: HTTP {resp.status_code}")
    return out


def _app(folder: Path, rows: int):
    from astro_exp.web import create_app
    from astro_exp.web.demo import build_demo

    build_demo(folder, n=rows, pool=64, size=128, run_id="bench")
    return create_app({"data_dir": folder, "outputs_dir": folder / "outputs", "run_id": "bench"})


@command("bench_web", name="bench-web", prepare=_LEGACY)
def main(cfg: DictConfig) -> dict:
    """Time the gallery on a big and a small demo catalog; the JSON report on stdout."""
    rows, repeat = int(cfg.rows), int(cfg.repeat)

    with tempfile.TemporaryDirectory(prefix="astro-exp-bench-web-") as tmp:
        t0 = time.perf_counter()
        big = _app(Path(tmp) / "big", rows)
        build_s = time.perf_counter() - t0
        small = _app(Path(tmp) / "small", 500)
        big_client, small_client = big.test_client(), small.test_client()
        deep_big, deep_small = max(1, rows // 48 - 1), max(1, 500 // 48 - 1)
        results = {}
        for name, url in CASES.items():
            t_big = _time(big_client, url.format(deep=deep_big), repeat)
            t_small = _time(small_client, url.format(deep=deep_small), repeat)
            med = statistics.median(t_big)
            results[name] = {
                "median_ms": round(med, 2),
                "p95_ms": round(sorted(t_big)[int(0.95 * (len(t_big) - 1))], 2),
                "ratio_vs_500_rows": round(med / statistics.median(t_small), 2),
            }
        thumbs = []
        for pid in range(1, 33):  # the pool's files: first request makes each thumbnail
            t1 = time.perf_counter()
            big_client.get(f"/media/thumb/{pid}.jpg")
            thumbs.append((time.perf_counter() - t1) * 1000)
        cached = _time(big_client, "/media/thumb/1.jpg", repeat)
    report = {
        "rows": rows,
        "build_catalog_s": round(build_s, 2),
        "gallery": results,
        "thumbnail_first_ms": round(statistics.median(thumbs), 2),
        "thumbnail_cached_ms": round(statistics.median(cached), 2),
        "thumbnail_cached_over_first": round(
            statistics.median(cached) / statistics.median(thumbs), 3
        ),
    }
    print(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
