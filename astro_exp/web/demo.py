"""A catalog filled with rendered sky pictures, for the web app's tests, demos and its
benchmark (``scripts/bench_web.py``): no network, any number of rows, real image files.

    from astro_exp.web.demo import build_demo
    build_demo("data-demo", n=200, classifier=Classifier.from_checkpoint("best.pt"))

Rows go through the same tables the scraper fills; with ``pool`` smaller than ``n`` the
pictures repeat (rows of a 20,000-row benchmark need not all be rendered).
"""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from astro_exp.web.catalog_io import default_catalog_path, store_root
from astro_exp.web.queries import SCHEMA

KINDS = ("galaxy", "nebula", "planet", "star")
WORDS = {
    "galaxy": ("Spiral Galaxy", "barred spiral galaxy with dust lanes and star-forming arms"),
    "nebula": ("Emission Nebula", "glowing hydrogen nebula sculpted by young stars"),
    "planet": ("Planet and Rings", "a giant planet with its rings and moons"),
    "star": ("Star Field", "a rich field of stars in the Milky Way"),
}

# The catalog's tables as DESIGN.md describes them; used only when astro_exp.data.catalog
# is not importable (the catalog module creates them itself otherwise).
DDL = f"""
CREATE TABLE IF NOT EXISTS {SCHEMA.pictures} (
  id INTEGER PRIMARY KEY, source TEXT NOT NULL, date TEXT, page_url TEXT, image_url TEXT, hd_url TEXT,
  title TEXT, explanation TEXT, credit TEXT, copyright TEXT, media_type TEXT, sha256 TEXT, path TEXT,
  width INTEGER, height INTEGER, fetched_at TEXT, status TEXT, error TEXT, labels TEXT,
  UNIQUE (source, date));
CREATE INDEX IF NOT EXISTS pictures_date ON {SCHEMA.pictures} (date);
CREATE INDEX IF NOT EXISTS pictures_sha ON {SCHEMA.pictures} (sha256);
CREATE TABLE IF NOT EXISTS {SCHEMA.corrections} (
  id INTEGER PRIMARY KEY, picture_id INTEGER NOT NULL REFERENCES {SCHEMA.pictures}(id), label TEXT NOT NULL,
  who TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS corrections_picture ON {SCHEMA.corrections} (picture_id, created_at);
CREATE TABLE IF NOT EXISTS {SCHEMA.predictions} (
  run_id TEXT NOT NULL, sha256 TEXT NOT NULL, label TEXT, confidence REAL, probs TEXT, anomaly_score REAL,
  is_anomaly INTEGER, created_at TEXT, PRIMARY KEY (run_id, sha256));
CREATE INDEX IF NOT EXISTS predictions_run_label ON {SCHEMA.predictions} (run_id, label);
"""


def _jpeg(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=88)
    return buf.getvalue()


def render_pool(pool: int, size: int, seed: int = 0) -> list[tuple[str, np.ndarray]]:
    """``pool`` rendered pictures (kind, RGB uint8), the four kinds in turn."""
    from astro_exp.sources import sky_render

    out = []
    for i in range(pool):
        kind = KINDS[i % len(KINDS)]
        out.append((kind, sky_render.render(kind, np.random.default_rng([seed, i]), size)))
    return out


def build_demo(data_dir: str | Path, n: int = 40, pool: int | None = None, size: int = 96,
               classifier: Any = None, run_id: str = "demo", seed: int = 0,
               anomaly_rate: float = 0.08) -> Path:  # fmt: skip
    """Create (or extend) the catalog under ``data_dir`` with ``n`` pictures; returns its path.

    With a ``classifier`` the predictions are the model's own; otherwise they are drawn at
    random (enough for paging and filtering benchmarks).
    """
    data_dir = Path(data_dir)
    rng = np.random.default_rng(seed)
    pictures = render_pool(min(n, pool or n), size, seed)
    root = store_root(data_dir)
    files: list[tuple[str, str, str, np.ndarray]] = []  # (kind, sha, rel path, pixels)
    for kind, px in pictures:
        data = _jpeg(px)
        sha = hashlib.sha256(data).hexdigest()
        rel = f"{sha[:2]}/{sha}.jpg"
        path = root / rel
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        files.append((kind, sha, rel, px))
    preds: dict[str, dict[str, Any]] = {}
    if classifier is not None:
        for (_, sha, _, _), p in zip(files, classifier.predict([f[3] for f in files], top_k=len(classifier.classes)),
                                     strict=True):  # fmt: skip
            preds[sha] = {"label": p.label, "confidence": p.confidence,
                          "probs": {t["label"]: t["probability"] for t in p.top_k},
                          "anomaly_score": p.anomaly_score, "is_anomaly": p.is_anomaly}  # fmt: skip
    path = default_catalog_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    start = date(1995, 6, 16)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(DDL)
        first = conn.execute(f"SELECT COALESCE(MAX(id), 0) FROM {SCHEMA.pictures}").fetchone()[0]
        pic_rows, pred_rows = [], []
        for k in range(n):
            i = first + k
            kind, sha, rel, _ = files[k % len(files)]
            # distinct sha per row beyond the pool: a benchmark row needs no file of its own
            row_sha = sha if k < len(files) else hashlib.sha256(f"{sha}:{k}".encode()).hexdigest()
            title, text = WORDS[kind]
            day = (start + timedelta(days=i)).isoformat()
            labels = {"primary": kind, "all": [kind], "scores": {kind: 1.0}, "version": "demo-1"}
            pic_rows.append((i + 1, "demo", day, f"https://apod.nasa.gov/apod/ap{day[2:4]}{day[5:7]}{day[8:10]}.html",
                             None, None, f"{title} {i + 1}", f"Picture {i + 1}: {text}. {'Lorem ipsum ' * 20}",
                             "Image Credit: astro-exp renderer", None, "image", row_sha, rel, size, size, now, "ok",
                             json.dumps(labels)))  # fmt: skip
            p = preds.get(sha)
            if p is None:
                conf = float(rng.uniform(0.3, 1.0))
                label = kind if rng.random() < 0.85 else KINDS[int(rng.integers(len(KINDS)))]
                score = float(rng.normal(0.0, 1.0))
                p = {"label": label, "confidence": conf, "probs": {label: conf},
                     "anomaly_score": score, "is_anomaly": bool(rng.random() < anomaly_rate)}  # fmt: skip
            pred_rows.append((run_id, row_sha, p["label"], p["confidence"], json.dumps(p["probs"]), p["anomaly_score"],
                              None if p["is_anomaly"] is None else int(p["is_anomaly"]), now))  # fmt: skip
        conn.executemany(f"INSERT INTO {SCHEMA.pictures} (id, source, date, page_url, image_url, hd_url, title, "
                         "explanation, credit, copyright, media_type, sha256, path, width, height, fetched_at, "
                         "status, labels) VALUES (" + ",".join("?" * 18) + ")", pic_rows)  # fmt: skip
        conn.executemany(f"INSERT OR REPLACE INTO {SCHEMA.predictions} VALUES (?,?,?,?,?,?,?,?)", pred_rows)
    return path
