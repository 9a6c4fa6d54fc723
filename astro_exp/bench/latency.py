"""Prediction and anomaly-detector timings, each against a baseline measured in the same run
(``astro-exp bench bench.predict=true``, ``python scripts/bench_predict.py``).

- ``predict_single_p50_ms`` / ``_p95_ms``: warm ``Classifier.predict([file])`` of one JPEG
  (decode, resize, preprocess, model, detector, neighbours) against ``model_single_p50_ms``,
  the model alone on one picture already in memory;
- ``predict_batch_img_s``: ``Classifier.predict(folder)`` over JPEG files against
  ``model_batch_img_s``, the model alone on batches already in memory;
- ``predict_single_parts_ms`` / ``predict_batch_parts_ms_per_img``: where that time goes,
  each part timed alone on the same files (``read_decode``: the file to RGB pixels at the
  size needed; ``resize``: to the model's size; ``preprocess``; ``forward``: the model with
  its embedding; ``detector``: score + flag; ``neighbours``; ``bookkeeping``: expanding the
  inputs and building the result rows), with ``serial_sum`` and the measured ``total``: in a
  batch, decoding the next batch overlaps the model, so ``total`` < ``serial_sum``;
- ``detector/<name>/fit_s`` and ``score_s`` on ``n_embeddings`` (10,000) embeddings of the
  model's width, against ``embed_10k_s``, the model's own time to embed that many pictures;
  ``knn_over_pyod_knn``: conf/detector/knn.yaml's fit + score against PyOD's ``KNN`` with
  the same parameters, same embeddings (the baseline it replaced).

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
from astro_exp.anomaly.embeddings import forward_embed, model_digest
from astro_exp.anomaly.settings import AnomalySettings
from astro_exp.data.cache import resize_image
from astro_exp.imageio import read_image
from astro_exp.models.checkpoint import make_bundle, save_bundle
from astro_exp.models.factory import create_model
from astro_exp.predict.classifier import Classifier


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def _clock(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def predict_parts(clf: Classifier, files: list[Path]) -> dict[str, float]:
    """Seconds of each step of ``clf.predict(files)`` (one batch), each alone, in order."""
    t: dict[str, float] = {}
    px, t["read_decode"] = _clock(
        lambda: [read_image(f, max_bytes=clf.max_bytes, target_size=clf.image_size) for f in files]
    )
    arr, t["resize"] = _clock(
        lambda: [resize_image(p, clf.image_size, clf.resize).transpose(2, 0, 1) for p in px]
    )
    x, t["preprocess"] = _clock(lambda: clf.preprocess(torch.from_numpy(np.stack(arr))))
    with torch.no_grad():
        (emb, logits), t["forward"] = _clock(forward_embed, clf.model, x, clf.embedding)
    e = emb.float().numpy()

    def detect() -> np.ndarray:
        got = clf.detector.score(e)
        clf.detector.flag(got)
        return got

    scores, t["detector"] = _clock(detect)
    _, t["neighbours"] = _clock(clf.index.neighbours, e, clf.n_neighbors)
    # bookkeeping: the inputs expanded, then the result rows of the batch with the math above
    # answered from memory (the instance's methods stand in for the model, detector, index)
    items, t_expand = _clock(clf.expand, files)
    logits_cpu, emb_cpu = logits.float(), emb.float()
    neigh = clf.index.neighbours(e, clf.n_neighbors)
    clf.forward = lambda x: (logits_cpu, emb_cpu)  # type: ignore[method-assign]
    clf.detector.score = lambda e: scores  # type: ignore[method-assign]
    clf.index.neighbours = lambda e, k: neigh  # type: ignore[method-assign]
    try:
        _, t_rows = _clock(clf._predict_loaded, items, [(a, None) for a in arr], 3)
    finally:
        del clf.forward, clf.detector.score, clf.index.neighbours
    t["bookkeeping"] = t_expand + t_rows
    return t


def random_bundle(
    path: Path,
    model_cfg: dict,
    preprocess_cfg: dict,
    classes: list[str],
    size: int,
    temperature: float = 1.0,
) -> Path:
    """A bundle of a fresh model saved at ``path``: random weights, since its speed, not its
    accuracy, is what is timed. Returns ``path``."""
    model = create_model(model_cfg["model_name"], len(classes), img_size=size)
    bundle = make_bundle(
        model,
        model_cfg=model_cfg,
        classes=classes,
        task="multiclass",
        preprocess=preprocess_cfg,
        image_size=size,
        temperature=temperature,
    )
    return save_bundle(bundle, path)


def _add_detector(ckpt: Path, images: np.ndarray, detector: str) -> int:
    """A real detector + reference beside the bundle, so predict pays for scoring and
    neighbours; fitted on the embeddings of up to 2,000 of ``images``. Returns their width."""
    clf = Classifier.from_checkpoint(ckpt, device="cpu", anomaly=False)
    clf.embedding = AnomalySettings.from_config(
        None
    ).embedding  # the one train.py fits detectors on
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
    return int(emb.shape[1])


def _write_pictures(images: np.ndarray, folder: Path, n: int) -> list[Path]:
    """The first ``n`` pictures as JPEGs at 4x their size, as new pictures arrive in practice."""
    folder.mkdir()
    size = int(images.shape[-1])
    for i in range(n):
        img = Image.fromarray(np.ascontiguousarray(images[i].transpose(1, 2, 0)))
        img.resize((size * 4, size * 4), Image.Resampling.BICUBIC).save(
            folder / f"{i:05d}.jpg", quality=92
        )
    return sorted(folder.iterdir())


def _model_alone(
    clf: Classifier, images: np.ndarray, n_single: int, batch_size: int, n_files: int
) -> tuple[list[float], float]:
    """The baselines: the model alone on tensors already in memory; seconds of each of
    ``n_single`` single pictures, and pictures/s in batches over about ``n_files``."""
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
    return single, model_batch


def _predict_times(
    clf: Classifier, folder: Path, files: list[Path], n_single: int, batch_size: int
) -> tuple[list[float], float]:
    """Warm ``predict([file])`` seconds of ``n_single`` of ``files``, and pictures/s of
    ``predict([folder])`` over all of them."""
    for f in files[:3]:
        clf.predict([f])  # warm
    lat = []
    for k in range(n_single):
        t0 = time.perf_counter()
        (p,) = clf.predict([files[k % len(files)]])
        lat.append(time.perf_counter() - t0)
        assert p.error is None, p.error
    t0 = time.perf_counter()
    preds = clf.predict([folder], batch_size=batch_size)
    return lat, len(preds) / (time.perf_counter() - t0)


def _parts_of_time(
    clf: Classifier, files: list[Path], n_single: int, batch_size: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Where the time goes: single pictures (median of each part, seconds) and batches
    (seconds per picture)."""
    singles = [predict_parts(clf, [files[k % len(files)]]) for k in range(n_single)]
    single_parts = {p: float(np.median([s[p] for s in singles])) for p in singles[0]}
    batches = [
        predict_parts(clf, files[i : i + batch_size]) for i in range(0, len(files), batch_size)
    ]
    batch_parts = {p: sum(b[p] for b in batches) / len(files) for p in batches[0]}
    return single_parts, batch_parts


def _in_ms(parts: dict[str, float], total_ms: float) -> dict[str, float]:
    """Parts in seconds as ms, with their ``serial_sum`` and the measured ``total``."""
    out = {p: round(v * 1e3, 3) for p, v in parts.items()}
    out["serial_sum"] = round(sum(parts.values()) * 1e3, 3)
    out["total"] = round(total_ms, 3)
    return out


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

    Args:
        model_cfg: the model group (``model_name``) of the bundle to time.
        preprocess_cfg: its preprocess group.
        classes: its classes.
        images: uint8 (N, 3, S, S) pictures (the bench's tensor cache); they are written as
            JPEGs at 4x the size, as new pictures arrive in practice.
        n_single: single pictures timed; n_batch: pictures of the batch figures;
        batch_size: predict's batch size; detector: the conf/detector option scored.

    Returns:
        The figures (module docstring), ms and pictures/s.
    """
    torch.manual_seed(0)
    size = int(images.shape[-1])
    with tempfile.TemporaryDirectory(prefix="bench-predict-") as tmp:
        ckpt = random_bundle(
            Path(tmp) / "ckpt" / "best.pt", model_cfg, preprocess_cfg, classes, size, 1.3
        )
        embedding_dim = _add_detector(ckpt, images, detector)
        clf = Classifier.from_checkpoint(ckpt, device="cpu")
        decode_workers = clf._decode_workers()  # 0: decoded inline, between the batches
        n_files = min(n_batch, len(images))
        pics = Path(tmp) / "pics"
        files = _write_pictures(images, pics, n_files)
        single, model_batch = _model_alone(clf, images, n_single, batch_size, n_files)
        lat, batch_img_s = _predict_times(clf, pics, files, n_single, batch_size)
        single_parts, batch_parts = _parts_of_time(clf, files, n_single, batch_size)

    m50 = _pct(single, 50) * 1e3
    p50, p95 = _pct(lat, 50) * 1e3, _pct(lat, 95) * 1e3
    return {
        "predict_device": "cpu",
        "predict_torch_threads": torch.get_num_threads(),
        "predict_decode_workers": decode_workers,
        "predict_input": f"JPEG {size * 4}px -> {size}px",
        "predict_detector": detector,
        "embedding_dim": embedding_dim,
        "model_single_p50_ms": round(m50, 2),
        "predict_single_p50_ms": round(p50, 2),
        "predict_single_p95_ms": round(p95, 2),
        "predict_single_p50_over_model_only": round(p50 / m50, 2),
        "predict_single_p95_over_model_only": round(p95 / m50, 2),
        "predict_single_parts_ms": _in_ms(single_parts, p50),
        "model_batch_img_s": round(model_batch, 1),
        "predict_batch_img_s": round(batch_img_s, 1),
        "predict_batch_over_model_only": round(batch_img_s / model_batch, 3),
        "predict_batch_parts_ms_per_img": _in_ms(batch_parts, 1e3 / batch_img_s),
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
    configs = detector_configs(seed=seed)
    if "knn" in configs and (not names or "knn" in names):
        # the baseline knn.yaml replaced: PyOD's KNN, same parameters, same embeddings
        configs["pyod_knn"] = {**configs["knn"], "_target_": "pyod.models.knn.KNN"}
    scores: dict[str, np.ndarray] = {}
    for name, cfg in configs.items():
        if names and name not in names and name != "pyod_knn":
            continue
        det = AnomalyDetector(cfg, seed=seed).fit(fit_x)
        t0 = time.perf_counter()
        scores[name] = det.score(score_x)
        score_s = time.perf_counter() - t0
        out[f"detector/{name}/fit_s"] = round(det.fit_s, 3)
        out[f"detector/{name}/score_s"] = round(score_s, 3)
        out[f"detector/{name}/fit_score_s"] = round(det.fit_s + score_s, 3)
        if model_batch_img_s:
            out[f"detector/{name}/score_over_embed"] = round(score_s / (n / model_batch_img_s), 4)
    if "pyod_knn" in scores:
        out["detector/knn_over_pyod_knn"] = round(
            out["detector/knn/fit_score_s"] / out["detector/pyod_knn/fit_score_s"], 3
        )
        out["detector/knn_vs_pyod_knn_max_abs_diff"] = float(
            np.abs(scores["knn"] - scores["pyod_knn"]).max()
        )
    return out
