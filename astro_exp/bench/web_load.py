"""The web app under load at the size users have (``astro-exp bench-web catalog=10k``):
a real waitress server on 127.0.0.1 over a catalog of the APOD archive's real days
(10,285 rows) and the same rows grown to 100,000, hit by concurrent clients with a mix of
what people do (gallery pages in every sort and filter, keyset Next pages, picture pages,
thumbnails, search, anomalies, the review queue in every order, a few bad requests).

Figures: per catalog, every request's status, p50/p95/max in ms overall and per kind, and
``p95_over_10k``: the 100,000-row p95 against the 10,285-row one of the same run (the cost
per request must not grow with the rows). Server and clients share the machine.
"""

from __future__ import annotations

import http.client
import logging
import random
import sqlite3
import statistics
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from astro_exp.data.catalog import catalog_path

SEARCHES = (
    "saturn",
    "dark matter",
    "aurora",
    "eclipse",
    "comet",
    "milky way",
    "andromeda",
    "mars rover",
    "supernova remnant",
    "jupiter",
    "orion nebula",
    "lunar",
)
ORDERS = ("uncertainty", "disagreement", "anomaly", "random", "text_picture")
GALLERY = (
    "/",
    "/?sort=confidence&order=asc",
    "/?sort=anomaly",
    "/?sort=title&order=asc",
    "/?label=galaxy",
    "/?truth=nebula",
    "/?anomalies=1",
    "/?date_from=2000-01-01&date_to=2005-12-31",
    "/?conf_min=0.4&conf_max=0.6",
    "/?label=star&sort=confidence",
    "/api/pictures?per_page=48&sort=anomaly",
)


def request_mix(path: Path, n: int, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` (kind, URL) pairs, shuffled: what a crowd of users asks of this catalog."""
    rng = random.Random(seed)
    with sqlite3.connect(path) as conn:
        max_id = int(conn.execute("SELECT MAX(id) FROM pictures").fetchone()[0])
    kinds = (
        ["gallery"] * 22
        + ["next_page"] * 10
        + ["picture"] * 18
        + ["thumbnail"] * 18
        + ["search"] * 12
        + ["anomalies"] * 8
        + ["review"] * 8
        + ["runs"] * 2
        + ["bad"] * 2
    )
    out = []
    for _ in range(n):
        kind = rng.choice(kinds)
        pid = rng.randint(1, max_id)
        out.append((kind, _url(kind, pid, max_id, rng)))
    return out


def _url(kind: str, pid: int, max_id: int, rng: random.Random) -> str:
    """One request of ``kind`` about picture ``pid`` (of ``max_id``), drawn with ``rng``."""
    if kind == "gallery":
        return rng.choice(GALLERY)
    if kind == "next_page":  # Next -> from a page that ends on a random picture
        base = rng.choice(GALLERY[:4])
        sep = "&" if "?" in base else "?"
        return f"{base}{sep}page={rng.randint(2, max(2, max_id // 48))}&after={pid}"
    if kind == "picture":
        return f"/pictures/{pid}"
    if kind == "thumbnail":
        return f"/media/thumb/{pid}.jpg"
    if kind == "search":
        return "/?q=" + rng.choice(SEARCHES).replace(" ", "+")
    if kind == "anomalies":
        return rng.choice(
            ["/anomalies", f"/anomalies?page={rng.randint(2, 20)}", "/api/anomalies?n=50"]
        )
    if kind == "review":
        return f"/api/review?order={rng.choice(ORDERS)}&n=20&offset={rng.choice([0, 0, 20, 400])}"
    if kind == "runs":
        return "/runs"
    # a person's typo: a missing picture, an unknown order
    return rng.choice([f"/pictures/{max_id + 1000}", "/api/review?order=newest"])


def _client(port: int, work: list[tuple[str, str]], out: list[tuple[str, int, float]]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for kind, url in work:
        t0 = time.perf_counter()
        try:
            conn.request("GET", url)
            resp = conn.getresponse()
            resp.read()
            status = resp.status
        except (OSError, http.client.HTTPException):
            status = 0
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        out.append((kind, status, (time.perf_counter() - t0) * 1000))
    conn.close()


def _pcts(ms: list[float]) -> dict[str, float]:
    s = sorted(ms)
    return {
        "n": len(s),
        "p50_ms": round(statistics.median(s), 1),
        "p95_ms": round(s[int(0.95 * (len(s) - 1))], 1),
        "max_ms": round(s[-1], 1),
    }


@contextmanager
def serving(app: Any, threads: int) -> Iterator[Any]:
    """``app`` served by waitress on a free port of 127.0.0.1 in a thread (the server; its
    port is ``effective_port``), shut down on leaving: its threads first, as a closed
    trigger would fail them."""
    from waitress import create_server

    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    server = create_server(app, host="127.0.0.1", port=0, threads=threads)
    threading.Thread(target=server.run, daemon=True).start()
    try:
        yield server
    finally:
        server.task_dispatcher.shutdown()
        server.close()


def _run_clients(port: int, mix: list[tuple[str, str]], clients: int) -> tuple[list, float]:
    """``mix`` dealt round robin to ``clients`` concurrent connections: every request's
    (kind, status, ms), and the wall seconds of the whole run."""
    results: list[tuple[str, int, float]] = []
    parts = [mix[i::clients] for i in range(clients)]
    workers = [threading.Thread(target=_client, args=(port, part, results)) for part in parts]
    t0 = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return results, time.perf_counter() - t0


def load_test(app: Any, mix: list[tuple[str, str]], clients: int = 8, threads: int = 8) -> dict:
    """Serve ``app`` with waitress on a free port and run ``mix`` through ``clients``
    concurrent keep-alive connections; the figures as a dict."""
    with serving(app, threads) as server:
        results, wall = _run_clients(server.effective_port, mix, clients)
    by_kind: dict[str, list[float]] = defaultdict(list)
    statuses = Counter()
    for kind, status, ms in results:
        by_kind[kind].append(ms)
        statuses[str(status)] += 1
    bad_ok = all(200 <= s < 500 for k, s, _ in results) and all(
        (400 <= s < 500) == (k == "bad") for k, s, _ in results
    )
    return {
        "requests": len(results),
        "clients": clients,
        "server_threads": threads,
        "wall_s": round(wall, 2),
        "requests_per_s": round(len(results) / wall, 1),
        "statuses": dict(statuses),
        "answered_as_expected": bad_ok,
        "all": _pcts([ms for _, _, ms in results]),
        "by_kind": {k: _pcts(v) for k, v in sorted(by_kind.items())},
    }


def catalog_load(
    folder: Path, archive: Path, rows: int | None, requests: int, clients: int, threads: int
) -> dict[str, Any]:
    """Build the archive catalog of ``rows`` (None: the archive as it is), serve it as
    ``serve`` does (caches warmed first) and run the mixed load against it."""
    from astro_exp.web import create_app, warm
    from astro_exp.web.demo import build_archive

    t0 = time.perf_counter()
    build_archive(folder, archive, rows=rows, run_id="bench")
    build_s = time.perf_counter() - t0
    app = create_app({"data_dir": folder, "outputs_dir": folder / "outputs", "run_id": "bench"})
    t1 = time.perf_counter()
    warm(app)
    warm_s = time.perf_counter() - t1
    path = catalog_path(folder)
    with sqlite3.connect(path) as conn:
        n_rows = int(conn.execute("SELECT COUNT(*) FROM pictures").fetchone()[0])
    out = {
        "rows": n_rows,
        "build_catalog_s": round(build_s, 1),
        "warm_caches_s": round(warm_s, 2),
        "catalog_mb": round(path.stat().st_size / 2**20, 1),
    }
    out.update(load_test(app, request_mix(path, requests), clients, threads))
    return out


def predict_catalog_figures(
    folder: Path,
    archive: Path,
    n: int = 256,
    model_name: str = "tf_efficientnet_lite0",
    image_size: int = 224,
    batch_size: int = 32,
) -> dict[str, Any]:
    """``predict catalog=true`` end to end (read the rows, decode each stored JPEG while
    the model runs, classify with the day's text when the classifier reads texts, commit
    predictions + embeddings batch by batch) against the model alone on the same pictures
    already decoded, resized and in memory: pictures/s of each and their ratio (target >= 0.8).
    A model with random weights (the bundle's format, not its accuracy, is what is timed)."""
    import torch

    from astro_exp.bench.latency import random_bundle
    from astro_exp.data.catalog import Catalog
    from astro_exp.data.store import ImageStore
    from astro_exp.predict.classifier import Classifier
    from astro_exp.web.demo import build_archive

    build_archive(folder, archive, rows=n, pool=n, run_id="other")
    torch.manual_seed(0)
    ckpt = random_bundle(
        folder / "run" / "checkpoints" / "best.pt",
        {"name": "bench", "model_name": model_name, "pretrained": False},
        {
            "name": "default",
            "image_size": image_size,
            "resize": "crop",
            "mean": [0.5] * 3,
            "std": [0.5] * 3,
        },
        ["galaxy", "nebula", "planet", "star"],
        image_size,
    )
    clf = Classifier.from_checkpoint(ckpt, device="cpu", anomaly=False)
    with Catalog(catalog_path(folder)) as cat:
        rows = cat.rows(status="ok")
        store = ImageStore(folder)
        files = [str(store.abspath(str(r["path"]))) for r in rows]
        model_img_s = _model_alone_img_s(clf, files, batch_size)
        stored, e2e_img_s = _predict_catalog_img_s(clf, cat, folder, rows, batch_size)
    return {
        "pictures": stored,
        "model": model_name,
        "image_size": image_size,
        "batch_size": batch_size,
        "torch_threads": torch.get_num_threads(),
        "decode_workers": clf._decode_workers(),
        "with_texts": clf.fusion is not None,
        "model_alone_img_s": round(model_img_s, 1),
        "predict_catalog_img_s": round(e2e_img_s, 1),
        "predict_over_model_alone": round(e2e_img_s / model_img_s, 3),
    }


def _model_alone_img_s(clf: Any, files: list[str], batch_size: int) -> float:
    """Pictures/s of the model alone on ``files``, decoded and resized up front, in batches."""
    import numpy as np
    import torch

    pixels = np.stack([clf._load(item)[0] for item in clf.expand(files)])
    x_all = torch.from_numpy(pixels)
    with torch.no_grad():
        clf.forward(clf.preprocess(x_all[:batch_size]))  # warm
        t0 = time.perf_counter()
        for i in range(0, len(x_all), batch_size):
            clf.forward(clf.preprocess(x_all[i : i + batch_size]))
        model_s = time.perf_counter() - t0
    return len(x_all) / model_s


def _predict_catalog_img_s(
    clf: Any, cat: Any, folder: Path, rows: list, batch_size: int
) -> tuple[int, float]:
    """``predict_catalog`` over the whole catalog after a warm-up batch: the predictions
    stored and pictures/s."""
    from astro_exp.predict.into_catalog import predict_catalog

    predict_catalog(clf, cat, "warm", folder, rows=rows[:batch_size], progress=False)
    t0 = time.perf_counter()
    got = predict_catalog(
        clf, cat, "bench", folder, batch_size=batch_size, progress=False, keep=False
    )
    end_to_end_s = time.perf_counter() - t0
    stored = len(cat.predicted_shas("bench"))
    del got
    return stored, stored / end_to_end_s
