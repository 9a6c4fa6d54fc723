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
        if kind == "gallery":
            url = rng.choice(GALLERY)
        elif kind == "next_page":  # Next -> from a page that ends on a random picture
            base = rng.choice(GALLERY[:4])
            sep = "&" if "?" in base else "?"
            url = f"{base}{sep}page={rng.randint(2, max(2, max_id // 48))}&after={pid}"
        elif kind == "picture":
            url = f"/pictures/{pid}"
        elif kind == "thumbnail":
            url = f"/media/thumb/{pid}.jpg"
        elif kind == "search":
            url = "/?q=" + rng.choice(SEARCHES).replace(" ", "+")
        elif kind == "anomalies":
            url = rng.choice(
                ["/anomalies", f"/anomalies?page={rng.randint(2, 20)}", "/api/anomalies?n=50"]
            )
        elif kind == "review":
            url = (
                f"/api/review?order={rng.choice(ORDERS)}&n=20&offset={rng.choice([0, 0, 20, 400])}"
            )
        elif kind == "runs":
            url = "/runs"
        else:  # a person's typo: a missing picture, an unknown order
            url = rng.choice([f"/pictures/{max_id + 1000}", "/api/review?order=newest"])
        out.append((kind, url))
    return out


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


def load_test(app: Any, mix: list[tuple[str, str]], clients: int = 8, threads: int = 8) -> dict:
    """Serve ``app`` with waitress on a free port and run ``mix`` through ``clients``
    concurrent keep-alive connections; the figures as a dict."""
    from waitress import create_server

    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    server = create_server(app, host="127.0.0.1", port=0, threads=threads)
    threading.Thread(target=server.run, daemon=True).start()
    results: list[tuple[str, int, float]] = []
    try:
        parts = [mix[i::clients] for i in range(clients)]
        workers = [
            threading.Thread(target=_client, args=(server.effective_port, part, results))
            for part in parts
        ]
        t0 = time.perf_counter()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        wall = time.perf_counter() - t0
    finally:
        server.task_dispatcher.shutdown()
        server.close()
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
    import numpy as np
    import torch

    from astro_exp.data.catalog import Catalog
    from astro_exp.data.store import ImageStore
    from astro_exp.models.checkpoint import make_bundle, save_bundle
    from astro_exp.models.factory import create_model
    from astro_exp.predict.classifier import Classifier
    from astro_exp.predict.into_catalog import predict_catalog
    from astro_exp.web.demo import build_archive

    build_archive(folder, archive, rows=n, pool=n, run_id="other")
    classes = ["galaxy", "nebula", "planet", "star"]
    torch.manual_seed(0)
    model = create_model(model_name, len(classes), img_size=image_size)
    bundle = make_bundle(
        model,
        model_cfg={"name": "bench", "model_name": model_name, "pretrained": False},
        classes=classes,
        task="multiclass",
        preprocess={
            "name": "default",
            "image_size": image_size,
            "resize": "crop",
            "mean": [0.5] * 3,
            "std": [0.5] * 3,
        },
        image_size=image_size,
    )
    ckpt = save_bundle(bundle, folder / "run" / "checkpoints" / "best.pt")
    clf = Classifier.from_checkpoint(ckpt, device="cpu", anomaly=False)
    with Catalog(catalog_path(folder)) as cat:
        rows = cat.rows(status="ok")
        # the model alone: the same pictures, decoded and resized up front, in batches
        store = ImageStore(folder)
        files = [str(store.abspath(str(r["path"]))) for r in rows]
        pixels = np.stack([clf._load(item)[0] for item in clf.expand(files)])
        x_all = torch.from_numpy(pixels)
        with torch.no_grad():
            clf.forward(clf.preprocess(x_all[:batch_size]))  # warm
            t0 = time.perf_counter()
            for i in range(0, len(x_all), batch_size):
                clf.forward(clf.preprocess(x_all[i : i + batch_size]))
            model_s = time.perf_counter() - t0
        predict_catalog(clf, cat, "warm", folder, rows=rows[:batch_size], progress=False)
        t0 = time.perf_counter()
        got = predict_catalog(
            clf, cat, "bench", folder, batch_size=batch_size, progress=False, keep=False
        )
        end_to_end_s = time.perf_counter() - t0
        stored = len(cat.predicted_shas("bench"))
    del got
    model_img_s = len(x_all) / model_s
    e2e_img_s = stored / end_to_end_s
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
