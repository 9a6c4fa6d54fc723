"""A catalog filled with rendered sky pictures, for the web app's tests, demos and its
benchmark (``scripts/bench_web.py``): no network, any number of rows, real image files.

    from astro_exp.web.demo import build_demo
    build_demo("data-demo", n=200, classifier=Classifier.from_checkpoint("best.pt"))

Pictures and rows go through the catalog and image store the scraper fills; with ``pool``
smaller than ``n`` the pictures repeat (rows of a 20,000-row benchmark need not all be rendered).
"""

from __future__ import annotations

import hashlib
import io
import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from astro_exp.data.catalog import Catalog, PictureRecord, catalog_path
from astro_exp.data.store import ImageStore, StoredImage

KINDS = ("galaxy", "nebula", "planet", "star")
WORDS = {
    "galaxy": ("Spiral Galaxy", "barred spiral galaxy with dust lanes and star-forming arms"),
    "nebula": ("Emission Nebula", "glowing hydrogen nebula sculpted by young stars"),
    "planet": ("Planet and Rings", "a giant planet with its rings and moons"),
    "star": ("Star Field", "a rich field of stars in the Milky Way"),
}


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


def build_demo(
    data_dir: str | Path,
    n: int = 40,
    pool: int | None = None,
    size: int = 96,
    classifier: Any = None,
    run_id: str = "demo",
    seed: int = 0,
    anomaly_rate: float = 0.08,
) -> Path:
    """Create (or extend) the catalog under ``data_dir`` with ``n`` pictures; returns its path.

    Pictures go into the data folder's :class:`ImageStore` and rows through :class:`Catalog`,
    exactly as a scrape leaves them. With a ``classifier`` the predictions are the model's
    own; otherwise they are drawn at random (enough for paging and filtering benchmarks).
    """
    data_dir = Path(data_dir)
    rng = np.random.default_rng(seed)
    pictures = render_pool(min(n, pool or n), size, seed)
    store = ImageStore(data_dir)
    files: list[tuple[str, StoredImage, np.ndarray]] = [
        (kind, store.add_bytes(_jpeg(px)), px) for kind, px in pictures
    ]
    preds: dict[str, dict[str, Any]] = {}
    path = catalog_path(data_dir)
    if classifier is not None:
        from astro_exp.predict.into_catalog import prediction_row

        with Catalog(path) as cat:
            first = cat.count()
        # each picture with the words of the day it is first stored under, as predict
        # catalog=true classifies it: the picture and its text together
        texts = [_words(kind, first + j) for j, (kind, _, _) in enumerate(files)]
        for (_, stored, _), p in zip(
            files,
            classifier.predict([f[2] for f in files], top_k=len(classifier.classes), texts=texts),
            strict=True,
        ):
            row = prediction_row(stored.sha256, p)
            row.pop("sha256")
            preds[stored.sha256] = row
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    start = date(1995, 6, 16)
    with Catalog(path) as cat, cat.transaction():
        first = cat.count()
        records, pred_rows = [], []
        for k in range(n):
            i = first + k
            kind, stored, _ = files[k % len(files)]
            # distinct sha per row beyond the pool: a benchmark row needs no file of its own
            row_sha = (
                stored.sha256
                if k < len(files)
                else hashlib.sha256(f"{stored.sha256}:{k}".encode()).hexdigest()
            )
            title, explanation = _words(kind, i)
            day = (start + timedelta(days=i)).isoformat()
            records.append(
                PictureRecord(
                    source="demo",
                    date=day,
                    status="ok",
                    media_type="image",
                    page_url=f"https://apod.nasa.gov/apod/ap{day[2:4]}{day[5:7]}{day[8:10]}.html",
                    title=title,
                    explanation=explanation,
                    credit="Image Credit: astro-exp renderer",
                    sha256=row_sha,
                    path=stored.path,
                    width=stored.width,
                    height=stored.height,
                    bytes=stored.bytes,
                    fetched_at=now,
                    labels={
                        "primary": kind,
                        "all": [kind],
                        "scores": {kind: 1.0},
                        "version": "demo-1",
                    },
                )
            )
            p = preds.get(stored.sha256)
            if p is None:
                conf = float(rng.uniform(0.3, 1.0))
                label = kind if rng.random() < 0.85 else KINDS[int(rng.integers(len(KINDS)))]
                score = float(rng.normal(0.0, 1.0))
                p = {
                    "label": label,
                    "confidence": conf,
                    "probs": {label: conf},
                    "anomaly_score": score,
                    "is_anomaly": bool(rng.random() < anomaly_rate),
                }
            pred_rows.append({"sha256": row_sha, **p})
        cat.upsert_many(records)
        cat.add_predictions(run_id, pred_rows)
    return path


def _words(kind: str, i: int) -> tuple[str, str]:
    """The title and explanation of demo row ``i`` showing a picture of ``kind``."""
    title, text = WORDS[kind]
    return f"{title} {i + 1}", f"Picture {i + 1}: {text}. {'Lorem ipsum ' * 20}"


def _normalise(p: dict[str, float]) -> dict[str, float]:
    total = sum(p.values()) or 1.0
    return {k: round(v / total, 6) for k, v in p.items()}


def build_archive(
    data_dir: str | Path,
    archive_root: str | Path,
    rows: int | None = None,
    pool: int = 256,
    run_id: str = "bench",
    seed: int = 0,
    anomaly_rate: float = 0.05,
    labels: str = "apod4",
) -> Path:
    """A catalog of the APOD archive's real days (``metadata.jsonl``: dates, titles,
    explanations, the weak labeller's labels of them) for the web app's benchmark at the size
    users have; returns its path.

    The first ``pool`` pictures are stored for real (thumbnails and originals are real
    work); the other rows share those files under their own sha256, so a 100,000-row catalog
    costs no 100,000 files. ``rows`` beyond the archive repeat its rows under the days after
    its newest one (``None``: exactly the archive). Predictions of run ``run_id`` are a
    text+picture answer per row, as predict stores it: the text's probabilities are the weak
    labeller's scores normalised, the picture's a draw that mostly agrees with the weak label.
    """
    from astro_exp.data.labels import build_labeller, load_label_config

    data_dir, archive_root = Path(data_dir), Path(archive_root)
    meta = archive_root / "metadata.jsonl"
    if not meta.is_file():
        raise FileNotFoundError(f"no {meta}; point archive_root at the APOD archive folder")
    days = [json.loads(line) for line in meta.read_text(encoding="utf-8").splitlines() if line]
    labeller = build_labeller(load_label_config(labels))
    classes = labeller.label_classes()
    store = ImageStore(data_dir)
    rng = np.random.default_rng(seed)
    files = [store.add_bytes((archive_root / d["file"]).read_bytes()) for d in days[: max(1, pool)]]
    n = len(days) if rows is None else int(rows)
    newest = date.fromisoformat(max(d["date"] for d in days))
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    weak_cache: dict[int, Any] = {}
    records, preds = [], []
    for k in range(n):
        src = k % len(days)
        d = days[src]
        if src not in weak_cache:
            weak_cache[src] = labeller.label(d.get("title"), d.get("explanation"))
        weak = weak_cache[src]
        stored = files[k % len(files)]
        repeat = k // len(days)
        day = d["date"] if repeat == 0 else (newest + timedelta(days=k - len(days) + 1)).isoformat()
        # each row its own sha256 (as distinct pictures have); only the pool's are real files
        if k < len(files):
            sha = stored.sha256
        elif repeat == 0:
            sha = d["sha256"]
        else:
            sha = hashlib.sha256(f"{d['sha256']}:{k}".encode()).hexdigest()
        records.append(
            PictureRecord(
                source="apod",
                date=day,
                status="ok",
                media_type="image",
                page_url=f"https://apod.nasa.gov/apod/ap{day[2:4]}{day[5:7]}{day[8:10]}.html",
                image_url=d.get("url"),
                hd_url=d.get("hdurl"),
                title=d.get("title"),
                explanation=d.get("explanation"),
                copyright=d.get("copyright"),
                sha256=sha,
                path=stored.path,
                width=stored.width,
                height=stored.height,
                bytes=stored.bytes,
                fetched_at=now,
                labels=weak.to_json(),
            )
        )
        alpha = np.ones(len(classes))
        if weak.primary in classes:
            alpha[classes.index(weak.primary)] += 6.0 if rng.random() < 0.8 else 0.0
        picture = dict(zip(classes, map(float, rng.dirichlet(alpha)), strict=True))
        text = _normalise({k2: v for k2, v in weak.scores.items() if k2 in classes}) or None
        fused = (
            _normalise({c: picture[c] * (0.2 + text.get(c, 0.0)) for c in classes})
            if text
            else picture
        )
        label = max(fused, key=fused.get)
        score = float(rng.normal(0.0, 1.0))
        preds.append(
            {
                "sha256": sha,
                "label": label,
                "confidence": fused[label],
                "probs": fused,
                "anomaly_score": score,
                "is_anomaly": bool(score > 1.645 or rng.random() < anomaly_rate / 10),
                "picture_label": max(picture, key=picture.get),
                "picture_confidence": max(picture.values()),
                "picture_probs": picture,
                "text_probs": text,
                "evidence": "picture+text" if text else "picture",
            }
        )
    with Catalog(catalog_path(data_dir)) as cat, cat.transaction():
        for start in range(0, n, 20_000):
            cat.upsert_many(records[start : start + 20_000])
            cat.add_predictions(run_id, preds[start : start + 20_000])
    return catalog_path(data_dir)
