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
DEMO_START = date(1995, 6, 16)  # the demo's first day (APOD's first)
WRITE_CHUNK = 20_000  # rows per upsert (a 100,000-row catalog in a few statements)
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
    store = ImageStore(data_dir)
    files: list[tuple[str, StoredImage, np.ndarray]] = [
        (kind, store.add_bytes(_jpeg(px)), px)
        for kind, px in render_pool(min(n, pool or n), size, seed)
    ]
    path = catalog_path(data_dir)
    preds = _model_predictions(classifier, path, files) if classifier is not None else {}
    now = _now()
    with Catalog(path) as cat, cat.transaction():
        first = cat.count()
        records, pred_rows = [], []
        for k in range(n):
            kind, stored, _ = files[k % len(files)]
            record = _demo_row(first + k, kind, stored, k, now, own_file=k < len(files))
            records.append(record)
            p = preds.get(stored.sha256) or _drawn(rng, kind, anomaly_rate)
            pred_rows.append({"sha256": record.sha256, **p})
        _write(cat, records, pred_rows, run_id)
    return path


def _model_predictions(
    classifier: Any, path: Path, files: list[tuple[str, StoredImage, np.ndarray]]
) -> dict[str, dict[str, Any]]:
    """{sha256: prediction row} of the pool by the model: each picture with the words of the
    day it is first stored under, as predict catalog=true classifies it (picture and text)."""
    from astro_exp.predict.into_catalog import prediction_row

    with Catalog(path) as cat:
        first = cat.count()
    texts = [_words(kind, first + j) for j, (kind, _, _) in enumerate(files)]
    preds: dict[str, dict[str, Any]] = {}
    answers = classifier.predict([f[2] for f in files], top_k=len(classifier.classes), texts=texts)
    for (_, stored, _), p in zip(files, answers, strict=True):
        row = prediction_row(stored.sha256, p)
        row.pop("sha256")
        preds[stored.sha256] = row
    return preds


def _demo_row(
    i: int, kind: str, stored: StoredImage, k: int, now: str, own_file: bool
) -> PictureRecord:
    """Demo row ``i`` (the ``k``-th added) showing ``stored``, a picture of ``kind``; a row
    beyond the pool (not ``own_file``) gets a sha256 of its own (it needs no file)."""
    sha = stored.sha256 if own_file else hashlib.sha256(f"{stored.sha256}:{k}".encode()).hexdigest()
    title, explanation = _words(kind, i)
    return _record(
        "demo",
        (DEMO_START + timedelta(days=i)).isoformat(),
        stored,
        sha,
        now,
        title=title,
        explanation=explanation,
        credit="Image Credit: astro-exp renderer",
        labels={"primary": kind, "all": [kind], "scores": {kind: 1.0}, "version": "demo-1"},
    )


def _drawn(rng: np.random.Generator, kind: str, anomaly_rate: float) -> dict[str, Any]:
    """A prediction drawn at random (no model): mostly the picture's kind, any confidence."""
    conf = float(rng.uniform(0.3, 1.0))
    label = kind if rng.random() < 0.85 else KINDS[int(rng.integers(len(KINDS)))]
    score = float(rng.normal(0.0, 1.0))
    return {
        "label": label,
        "confidence": conf,
        "probs": {label: conf},
        "anomaly_score": score,
        "is_anomaly": bool(rng.random() < anomaly_rate),
    }


def _words(kind: str, i: int) -> tuple[str, str]:
    """The title and explanation of demo row ``i`` showing a picture of ``kind``."""
    title, text = WORDS[kind]
    return f"{title} {i + 1}", f"Picture {i + 1}: {text}. {'Lorem ipsum ' * 20}"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _record(
    source: str, day: str, stored: StoredImage, sha: str, now: str, **text: Any
) -> PictureRecord:
    """The catalog row of a stored picture of ``day`` (as a scrape leaves it) under
    ``sha``; ``text``: its title, explanation, credits, URLs and weak labels."""
    return PictureRecord(
        source=source,
        date=day,
        status="ok",
        media_type="image",
        page_url=f"https://apod.nasa.gov/apod/ap{day[2:4]}{day[5:7]}{day[8:10]}.html",
        sha256=sha,
        path=stored.path,
        width=stored.width,
        height=stored.height,
        bytes=stored.bytes,
        fetched_at=now,
        **text,
    )


def _write(
    cat: Catalog, records: list[PictureRecord], preds: list[dict[str, Any]], run_id: str
) -> None:
    """The rows and the run's predictions of them, in chunks (one transaction: the caller's)."""
    with cat.transaction():
        for start in range(0, len(records), WRITE_CHUNK):
            cat.upsert_many(records[start : start + WRITE_CHUNK])
            cat.add_predictions(run_id, preds[start : start + WRITE_CHUNK])


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
    days = _archive_days(archive_root)
    labeller = build_labeller(load_label_config(labels))
    classes = labeller.label_classes()
    store = ImageStore(data_dir)
    rng = np.random.default_rng(seed)
    files = [store.add_bytes((archive_root / d["file"]).read_bytes()) for d in days[: max(1, pool)]]
    n = len(days) if rows is None else int(rows)
    newest = date.fromisoformat(max(d["date"] for d in days))
    now = _now()
    weak_cache: dict[int, Any] = {}
    records, preds = [], []
    for k in range(n):
        src = k % len(days)
        if src not in weak_cache:
            weak_cache[src] = labeller.label(days[src].get("title"), days[src].get("explanation"))
        record = _archive_row(k, days, newest, files, weak_cache[src], now)
        records.append(record)
        p = _archive_prediction(rng, weak_cache[src], classes, anomaly_rate)
        preds.append({"sha256": record.sha256, **p})
    with Catalog(catalog_path(data_dir)) as cat:
        _write(cat, records, preds, run_id)
    return catalog_path(data_dir)


def _archive_days(archive_root: Path) -> list[dict[str, Any]]:
    """The archive's days (``metadata.jsonl``, one JSON object a line)."""
    meta = archive_root / "metadata.jsonl"
    if not meta.is_file():
        raise FileNotFoundError(f"no {meta}; point archive_root at the APOD archive folder")
    return [json.loads(line) for line in meta.read_text(encoding="utf-8").splitlines() if line]


def _archive_row(
    k: int,
    days: list[dict[str, Any]],
    newest: date,
    files: list[StoredImage],
    weak: Any,
    now: str,
) -> PictureRecord:
    """Row ``k`` of the benchmark catalog: archive day ``k`` (a repeat past the archive's
    end is dated after its newest day), each row under its own sha256 (as distinct pictures
    have); only the pool's rows are real files."""
    d = days[k % len(days)]
    stored = files[k % len(files)]
    repeat = k // len(days)
    day = d["date"] if repeat == 0 else (newest + timedelta(days=k - len(days) + 1)).isoformat()
    if k < len(files):
        sha = stored.sha256
    elif repeat == 0:
        sha = d["sha256"]
    else:
        sha = hashlib.sha256(f"{d['sha256']}:{k}".encode()).hexdigest()
    return _record(
        "apod",
        day,
        stored,
        sha,
        now,
        image_url=d.get("url"),
        hd_url=d.get("hdurl"),
        title=d.get("title"),
        explanation=d.get("explanation"),
        copyright=d.get("copyright"),
        labels=weak.to_json(),
    )


def _archive_prediction(
    rng: np.random.Generator, weak: Any, classes: list[str], anomaly_rate: float
) -> dict[str, Any]:
    """A text+picture answer as predict stores it: the picture's probabilities a draw that
    mostly agrees with the weak label, the text's the weak labeller's scores normalised."""
    alpha = np.ones(len(classes))
    if weak.primary in classes:
        alpha[classes.index(weak.primary)] += 6.0 if rng.random() < 0.8 else 0.0
    picture = dict(zip(classes, map(float, rng.dirichlet(alpha)), strict=True))
    text = _normalise({k: v for k, v in weak.scores.items() if k in classes}) or None
    fused = (
        _normalise({c: picture[c] * (0.2 + text.get(c, 0.0)) for c in classes}) if text else picture
    )
    label = max(fused, key=fused.get)
    score = float(rng.normal(0.0, 1.0))
    return {
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
