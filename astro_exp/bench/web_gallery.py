"""Gallery response time with a large catalog: the web app's paging must stay fast
(``astro-exp bench-web``, ``python scripts/bench_web.py``; JSON on stdout).

    python scripts/bench_web.py                     # 20,000 rows
    python scripts/bench_web.py rows=50000 repeat=30

:func:`demo_report` builds a demo catalog (rendered pictures, random predictions) in a
temporary folder, then times whole gallery responses (query + count + template) through the
WSGI app for typical filters, sorts and a deep page: per case the median and p95 in ms and,
as the baseline of the same run, the ratio to the same request on a 500-row catalog
(1.0 = no slower with 40x the rows). Thumbnails are timed too: first request (made and
cached) vs later requests (served from the cache).

The Review page's step is timed over HTTP against a real waitress server on a catalog of
``review_rows`` pictures: an answer POSTed to ``/api/review/<id>`` and then the next
picture's thumbnail fetched (made on that request, as for a picture nobody viewed yet),
p50/p95 in ms (target p95 < 150 ms), and the queue batch the page prefetches.

:func:`scale_report`: the mixed load over the APOD archive's real rows
(:mod:`astro_exp.bench.web_load`).
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from astro_exp.errors import AstroExpError

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
    """ms of ``repeat`` requests of ``url`` after one warm-up request."""
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
    """The web app over a demo catalog of ``rows`` pictures built in ``folder``."""
    from astro_exp.web import create_app
    from astro_exp.web.demo import build_demo

    build_demo(folder, n=rows, pool=64, size=128, run_id="bench")
    return create_app({"data_dir": folder, "outputs_dir": folder / "outputs", "run_id": "bench"})


def _pct(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 2),
    }


def _call(conn: http.client.HTTPConnection, method: str, url: str, body: Any = None) -> bytes:
    """One request on the keep-alive connection; the body, or an error unless HTTP 200."""
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    conn.request(method, url, body=data, headers=headers)
    resp = conn.getresponse()
    payload = resp.read()
    if resp.status != 200:
        raise AstroExpError(f"{method} {url}: HTTP {resp.status} {payload[:200]!r}")
    return payload


def _review_steps(conn: http.client.HTTPConnection, rows: int, repeat: int) -> tuple[list, list]:
    """ms of ``repeat + 1`` answers (each POSTed, then the next picture's thumbnail fetched)
    and of ``repeat`` queue batches of 20."""
    first = json.loads(_call(conn, "GET", f"/api/review?n={min(200, repeat + 2)}"))
    items, label = first["items"], first["classes"][0]
    if len(items) < repeat + 2:
        raise AstroExpError(f"review_rows={rows} is too few for review_repeat={repeat}")
    answers = []
    for it, nxt in zip(items[: repeat + 1], items[1 : repeat + 2], strict=True):
        t0 = time.perf_counter()
        _call(conn, "POST", f"/api/review/{it['id']}", {"label": label, "who": "bench"})
        _call(conn, "GET", nxt["thumb_url"])
        answers.append((time.perf_counter() - t0) * 1000)
    queue = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        _call(conn, "GET", "/api/review?n=20")
        queue.append((time.perf_counter() - t0) * 1000)
    return answers, queue


def bench_review(folder: Path, rows: int, repeat: int) -> dict[str, Any]:
    """The Review page's step over HTTP (a keep-alive connection, as a browser keeps)."""
    from astro_exp.bench.web_load import serving

    with serving(_app(folder, rows), threads=4) as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.effective_port, timeout=30)
        try:
            answers, queue = _review_steps(conn, rows, repeat)
        finally:
            conn.close()
    return {
        "rows": rows,
        "answer_and_next_thumbnail": _pct(answers[1:]),  # the first one warms the caches
        "queue_batch_of_20": _pct(queue),
    }


def _gallery_cases(big: Any, small: Any, rows: int, repeat: int) -> dict[str, dict[str, float]]:
    """Every case of :data:`CASES` on the big catalog's client against the 500-row one's."""
    deep_big, deep_small = max(1, rows // 48 - 1), max(1, 500 // 48 - 1)
    results = {}
    for name, url in CASES.items():
        t_big = _time(big, url.format(deep=deep_big), repeat)
        t_small = _time(small, url.format(deep=deep_small), repeat)
        med = statistics.median(t_big)
        results[name] = {
            "median_ms": round(med, 2),
            "p95_ms": round(sorted(t_big)[int(0.95 * (len(t_big) - 1))], 2),
            "ratio_vs_500_rows": round(med / statistics.median(t_small), 2),
        }
    return results


def _thumbnails(client: Any, repeat: int) -> dict[str, float]:
    """A thumbnail's first request (made and cached) against later ones (from the cache)."""
    thumbs = []
    for pid in range(1, 33):  # the pool's files: first request makes each thumbnail
        t1 = time.perf_counter()
        client.get(f"/media/thumb/{pid}.jpg")
        thumbs.append((time.perf_counter() - t1) * 1000)
    cached = _time(client, "/media/thumb/1.jpg", repeat)
    return {
        "thumbnail_first_ms": round(statistics.median(thumbs), 2),
        "thumbnail_cached_ms": round(statistics.median(cached), 2),
        "thumbnail_cached_over_first": round(
            statistics.median(cached) / statistics.median(thumbs), 3
        ),
    }


def demo_report(rows: int, repeat: int, review_rows: int, review_repeat: int) -> dict[str, Any]:
    """The gallery's requests one by one on a demo catalog of ``rows`` (``repeat`` timed
    each), the thumbnails, and the Review page's step (``review_rows``, ``review_repeat``).

    Returns:
        The report: ``rows``, ``build_catalog_s``, ``gallery`` (per case), the thumbnail
        figures and ``review``.
    """
    with tempfile.TemporaryDirectory(prefix="astro-exp-bench-web-") as tmp:
        t0 = time.perf_counter()
        big = _app(Path(tmp) / "big", rows)
        build_s = time.perf_counter() - t0
        small = _app(Path(tmp) / "small", 500)
        big_client = big.test_client()
        results = _gallery_cases(big_client, small.test_client(), rows, repeat)
        thumbs = _thumbnails(big_client, repeat)
        review = bench_review(Path(tmp) / "review", review_rows, review_repeat)
    return {
        "rows": rows,
        "build_catalog_s": round(build_s, 2),
        "gallery": results,
        **thumbs,
        "review": review,
    }


def scale_report(
    archive: Path,
    catalog: str,
    big_rows: int,
    requests: int,
    clients: int,
    server_threads: int,
    predict_pictures: int,
) -> dict[str, Any]:
    """``catalog=10k|100k|both``: the mixed load over the archive's real rows (10,285) and
    grown to ``big_rows`` (:mod:`astro_exp.bench.web_load`), with the growth between them;
    ``both`` and ``predict``: ``predict catalog=true`` over ``predict_pictures`` of them.

    Args:
        archive: the APOD archive folder (metadata.jsonl + images/).
        catalog: 10k (the archive as it is), 100k (grown to ``big_rows``), both or predict.
        big_rows: the grown catalog's rows; requests, clients, server_threads: the load.
        predict_pictures: pictures of the predict figures (0: skip them).

    Returns:
        The report: the machine's CPUs, per catalog the load's figures, and their ratios.
    """
    from astro_exp.bench.web_load import catalog_load

    if not (archive / "metadata.jsonl").is_file():
        raise AstroExpError(
            f"no APOD archive at {archive} (metadata.jsonl + images/); pass archive=<folder>"
        )
    sizes = {"10k": [None], "100k": [big_rows], "both": [None, big_rows], "predict": []}
    if catalog not in sizes:
        raise AstroExpError(f"catalog={catalog!r} must be demo, 10k, 100k, both or predict")
    report: dict[str, Any] = {"machine_cpus": os.cpu_count(), "catalogs": {}}
    with tempfile.TemporaryDirectory(prefix="astro-exp-bench-web-") as tmp:
        if predict_pictures > 0 and catalog in ("both", "predict"):
            from astro_exp.bench.web_load import predict_catalog_figures

            report["predict_catalog"] = predict_catalog_figures(
                Path(tmp) / "predict", archive, predict_pictures
            )
        for rows in sizes[catalog]:
            name = "archive" if rows is None else f"{rows}"
            report["catalogs"][name] = catalog_load(
                Path(tmp) / name, archive, rows, requests, clients, server_threads
            )
    cats = list(report["catalogs"].values())
    if len(cats) == 2:
        report["p95_big_over_archive"] = round(
            cats[1]["all"]["p95_ms"] / cats[0]["all"]["p95_ms"], 2
        )
        report["rows_big_over_archive"] = round(cats[1]["rows"] / cats[0]["rows"], 1)
    return report
