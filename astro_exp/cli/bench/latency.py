"""Prediction and anomaly-detector timings, each against a baseline measured in the same run
(``astro-exp bench bench.predict=true``, ``python scripts/bench_predict.py``).

- ``predict_single_p50_ms`` / ``_p95_ms``: warm ``Classifier.predict([file])`` of one JPEG
  (decode, resize, preprocess, model, detector, neighbours) against ``model_single_p50_ms``,
  the model alone on one picture already in memory;
- ``predict_batch_img_s``: ``Classifier.predict(folder)`` over JPEG files against
  ``model_batch_img_s``, the model alone on batches already in memory;
- ``detector/<name>/fit_s`` and ``score_s`` on ``n_embeddings`` (10,000) embeddings of the
  model's width, against ``embed_10k_s``, the model's own time to embed that many pictures.

Predict figures are taken on CPU (what a user's laptop or the web app has).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from astro_exp.anomaly.detector_table import detector_configs
from astro_exp.anomaly.detectors import (
    DETECTOR_FILE,
    REFERENCE_FILE,
    AnomalyDetector,
    save_reference,
)
from astro_exp.anomaly.embeddings import model_digest
from astro_exp.anomaly.settings import AnomalySettings
from astro_exp.models.checkpoint import make_bundle, save_bundle
from astro_exp.models.factory import create_model
from astro_exp.predict.classifier import Classifier


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def predict_figures(
    model_cfg: dict,
    preprocess_cfg: dict,
    classes: list[str],
    images: np.ndarray,
    n_single: int = 40,
    n_batch: int = 256,
    batch_size: int = 32,
    detector: str = "knn",
) -> dict[str, float]:
    """Warm single-picture latency and batch throughput of predict on CPU, with baselines.

    ``images`` are uint8 (N, 3, S, S) pictures (the bench's tensor cache); they are written as
    JPEGs at 4x the size, as new pictures arrive in practice.
    """
    torch.manual_seed(0)
    size = int(images.shape[-1])
    model = create_model(model_cfg["model_name"], len(classes), img_size=size)
    bundle = make_bundle(
        model,
        model_cfg=model_cfg,
        classes=classes,
        task="multiclass",
        preprocess=preprocess_cfg,
        image_size=size,
        temperature=1.3,
    )
    with tempfile.TemporaryDirectory(prefix="bench-predict-") as tmp:
        ckpt = save_bundle(bundle, Path(tmp) / "ckpt" / "best.pt")
        clf = Classifier.from_checkpoint(ckpt, device="cpu", anomaly=False)
        clf.embedding = AnomalySettings.from_config(
            None
        ).embedding  # the one train.py fits detectors on
        # a real detector + reference beside the bundle: predict pays for scoring and neighbours
        ref_n = min(len(images), 2000)
        _, emb = clf.forward(torch.from_numpy(np.ascontiguousarray(images[:ref_n])))
        det = AnomalyDetector(detector_configs()[detector]).fit(emb.numpy())
        det.calibrate(det.score(emb.numpy()), 0.05)
        det.meta = {
            "digest": model_digest(clf.model),
            "n_neighbors": 5,
            "embedding": clf.embedding.to_meta(),
        }
        det.save(ckpt.parent / DETECTOR_FILE)
        save_reference(
            ckpt.parent / REFERENCE_FILE,
            emb.numpy(),
            ["x"] * ref_n,
            [str(i) for i in range(ref_n)],
            det.meta["digest"],
        )
        clf = Classifier.from_checkpoint(ckpt, device="cpu")
        pics = Path(tmp) / "pics"
        pics.mkdir()
        n_files = min(n_batch, len(images))
        for i in range(n_files):
            img = Image.fromarray(np.ascontiguousarray(images[i].transpose(1, 2, 0)))
            img.resize((size * 4, size * 4), Image.Resampling.BICUBIC).save(
                pics / f"{i:05d}.jpg", quality=92
            )
        files = sorted(pics.iterdir())

        # baselines: the model alone on tensors already in memory
        x1 = clf.preprocess(torch.from_numpy(np.ascontiguousarray(images[:1])))
        xb = clf.preprocess(torch.from_numpy(np.ascontiguousarray(images[:batch_size])))
        with torch.no_grad():
            for _ in range(3):
                clf.model(x1)
            single = []
            for _ in range(n_single):
                t0 = time.perf_counter()
                clf.model(x1)
                single.append(time.perf_counter() - t0)
            clf.model(xb)
            t0, reps = time.perf_counter(), max(1, n_files // batch_size)
            for _ in range(reps):
                clf.model(xb)
            model_batch = reps * len(xb) / (time.perf_counter() - t0)

        for f in files[:3]:
            clf.predict([f])  # warm
        lat = []
        for k in range(n_single):
            t0 = time.perf_counter()
            (p,) = clf.predict([files[k % len(files)]])
            lat.append(time.perf_counter() - t0)
            assert p.error is None, p.error
        t0 = time.perf_counter()
        preds = clf.predict([pics], batch_size=batch_size)
        batch_img_s = len(preds) / (time.perf_counter() - t0)

    m50 = _pct(single, 50) * 1e3
    p50, p95 = _pct(lat, 50) * 1e3, _pct(lat, 95) * 1e3
    return {
        "predict_device": "cpu",
        "predict_torch_threads": torch.get_num_threads(),
        "predict_input": f"JPEG {size * 4}px -> {size}px",
        "predict_detector": detector,
        "embedding_dim": int(emb.shape[1]),
        "model_single_p50_ms": round(m50, 2),
        "predict_single_p50_ms": round(p50, 2),
        "predict_single_p95_ms": round(p95, 2),
        "predict_single_p50_over_model_only": round(p50 / m50, 2),
        "model_batch_img_s": round(model_batch, 1),
        "predict_batch_img_s": round(batch_img_s, 1),
        "predict_batch_over_model_only": round(batch_img_s / model_batch, 3),
    }


def detector_figures(
    dim: int,
    model_batch_img_s: float | None = None,
    n: int = 10_000,
    names: list[str] | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Fit and score seconds of each conf/detector option on ``n`` embeddings of width ``dim``.

    The embeddings are clustered like a trained model's (one cluster a class, 4 classes)
    with 10 % scattered outliers; the scores are on ``n`` fresh ones.
    """
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (4, dim))

    def draw(m: int) -> np.ndarray:
        x = centres[rng.integers(0, 4, m)] + rng.normal(0, 1, (m, dim))
        out = rng.random(m) < 0.1
        x[out] = rng.normal(0, 4, (int(out.sum()), dim))
        return np.maximum(x, 0).astype(np.float32)  # post-ReLU pooled features are >= 0

    fit_x, score_x = draw(n), draw(n)
    out: dict[str, float] = {"detector_n_embeddings": n, "detector_dim": dim}
    if model_batch_img_s:
        out["embed_10k_s"] = round(n / model_batch_img_s, 3)
    for name, cfg in detector_configs(seed=seed).items():
        if names and name not in names:
            continue
        det = AnomalyDetector(cfg, seed=seed).fit(fit_x)
        t0 = time.perf_counter()
        det.score(score_x)
        score_s = time.perf_counter() - t0
        out[f"detector/{name}/fit_s"] = round(det.fit_s, 3)
        out[f"detector/{name}/score_s"] = round(score_s, 3)
        if model_batch_img_s:
            out[f"detector/{name}/score_over_embed"] = round(score_s / (n / model_batch_img_s), 4)
    return out
