"""The anomaly stage of a run (after ``final_evaluation``): fit, calibrate, evaluate, save.

1. embeddings of train / val / test with the best weights (cached in ``run_dir/embeddings``);
2. fit ``conf/detector`` (StandardScaler + optional PCA + PyOD) on the train embeddings;
3. threshold = the ``1 - anomaly.false_alarm_rate`` quantile of the val scores;
4. score test (ordinary pictures) against the anomaly sets (:mod:`astro_exp.anomaly.sets`):
   ROC-AUC, average precision, precision / recall at the threshold, per kind too;
5. ``checkpoints/detector.joblib`` + ``checkpoints/reference.npz`` beside ``best.pt`` for
   predict, and ``anomaly_scores.png`` (score histograms) in the run folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from astro_exp.anomaly.detector_table import (
    compare_detectors,
    detector_configs,
    format_table,
    score_metrics,
)
from astro_exp.anomaly.detectors import (
    DETECTOR_FILE,
    REFERENCE_FILE,
    AnomalyDetector,
    save_reference,
)
from astro_exp.anomaly.embeddings import (
    EmbeddingCache,
    Embeddings,
    EmbeddingSpec,
    embed_array,
    embed_split,
    embedding_key,
    model_digest,
)
from astro_exp.anomaly.sets import SKIMAGE_PHOTOS, skimage_photo_set
from astro_exp.anomaly.settings import AnomalySettings
from astro_exp.config import to_plain
from astro_exp.data.cache import build_cache
from astro_exp.data.imageset import ImageSet
from astro_exp.errors import ConfigError
from astro_exp.sources.protocols import HasAnomalySet

log = logging.getLogger(__name__)


def reference_labels(targets: np.ndarray, classes: list[str]) -> list[str]:
    """Label strings of targets: the class, or ``a;b`` for multilabel."""
    if targets.ndim == 1:
        return [classes[int(t)] for t in targets]
    return [";".join(classes[j] for j in np.flatnonzero(row)) for row in targets]


def anomaly_imagesets(
    a: AnomalySettings,
    classes: list[str],
    *,
    source: object | None,
    holdout: ImageSet | None,
    seed: int,
) -> list[ImageSet]:
    """The anomaly sets of this run: the source's own (a :class:`HasAnomalySet`, e.g. the
    renderer's kinds) or else skimage photos, plus the held-out classes' pictures.

    ``classes`` are the classes trained on; ``holdout`` is what
    :func:`~astro_exp.anomaly.sets.split_holdout` took out before the DataModule was built.
    """
    sets: list[ImageSet] = []
    if isinstance(source, HasAnomalySet):
        sets.append(source.anomaly_set(per_kind=a.per_kind, kinds=a.kinds))
    else:
        sets.append(skimage_photo_set(a.photos or SKIMAGE_PHOTOS, a.views_per_photo, seed))
    if holdout is not None:
        sets.append(holdout)
    elif a.holdout_classes:
        still = [c for c in a.holdout_classes if c in classes]
        if still:
            raise ConfigError(
                f"anomaly.holdout_classes={still} are still trained on: split them off with "
                "astro_exp.anomaly.sets.split_holdout before build_datamodule and pass holdout= here"
            )
    return sets


def cache_sets(
    sets: list[ImageSet],
    image_size: int,
    resize: str,
    cache_dir: str | Path,
    progress: bool = False,
) -> tuple[np.ndarray, list[str], list[str]]:
    """uint8 (N, 3, S, S) pictures of all sets through the tensor cache, their kinds and ids."""
    arrays, kinds, ids = [], [], []
    for s in sets:
        images, failed = build_cache(s, image_size, resize, cache_dir, progress=progress)
        ok = np.setdiff1d(np.arange(len(s)), np.fromiter(failed, np.int64, len(failed)))
        prefix = "holdout:" if s.name.endswith("-holdout") else ""
        arrays.append(np.asarray(images[ok]))
        kinds += [prefix + s.classes[int(s.targets[i])] for i in ok]
        ids += [s.ids[i] for i in ok]
    if not arrays:
        return np.zeros((0, 3, image_size, image_size), np.uint8), [], []
    return np.concatenate(arrays), kinds, ids


def plot_scores(
    test: np.ndarray,
    anomalies: np.ndarray,
    kinds: list[str],
    threshold: float,
    path: str | Path,
    title: str = "",
) -> Path:
    """Histograms of ordinary (test) and anomaly scores by kind, with the flag threshold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    all_scores = np.r_[test, anomalies]
    bins = (
        np.linspace(float(all_scores.min()), float(all_scores.max()), 41) if len(all_scores) else 40
    )
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    ax.hist(
        test,
        bins=bins,
        alpha=0.6,
        label=f"test (ordinary, {len(test)})",
        color="tab:blue",
        density=True,
    )
    kind_arr = np.asarray(kinds)
    for k in sorted(set(kinds)):
        ax.hist(
            anomalies[kind_arr == k],
            bins=bins,
            histtype="step",
            lw=1.6,
            density=True,
            label=f"{k} ({int((kind_arr == k).sum())})",
        )
    ax.axvline(threshold, color="black", ls="--", lw=1.2, label="flag threshold")
    ax.set_xlabel("anomaly score (higher = stranger)")
    ax.set_ylabel("density")
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def anomaly_stage(
    trainer,
    logger,
    anomaly: Mapping | AnomalySettings | None,
    detector: Mapping | None,
    *,
    seed: int,
    source: object | None = None,
    holdout: ImageSet | None = None,
    progress: bool = False,
) -> dict[str, float]:
    """Fit the detector on train embeddings, threshold on val, evaluate on test + anomalies.

    ``anomaly`` and ``detector`` are the run's config groups; ``source`` the run's source
    (asked for its own anomaly set when it is a :class:`HasAnomalySet`), ``holdout`` the
    pictures of ``anomaly.holdout_classes`` kept out of training.
    Call after ``final_evaluation`` (the trainer's model then holds the best weights).
    Returns ``anomaly/*`` metrics for metrics.json; writes the detector beside best.pt.
    """
    a = anomaly if isinstance(anomaly, AnomalySettings) else AnomalySettings.from_config(anomaly)
    if not a.enabled:
        return {}
    dcfg = _detector_config(detector)
    run_dir = Path(trainer.run_dir)
    t0 = time.perf_counter()
    digest = model_digest(trainer.model)
    cache = EmbeddingCache(run_dir, embedding_key(digest, a.embedding))
    emb = _split_embeddings(trainer, cache, a.embedding)
    anom, names = _anomaly_embeddings(
        trainer, cache, a, seed=seed, source=source, holdout=holdout, progress=progress
    )
    embed_s = time.perf_counter() - t0

    det = AnomalyDetector(dcfg, a.pca_components, seed).fit(emb["train"].emb)
    threshold = det.calibrate(det.score(emb["val"].emb), a.false_alarm_rate)
    t1 = time.perf_counter()
    s_test, s_anom = det.score(emb["test"].emb), det.score(anom.emb)
    timings = {
        "anomaly/fit_s": det.fit_s,
        "anomaly/score_s": time.perf_counter() - t1,
        "anomaly/embed_s": embed_s,
    }
    metrics = _detection_metrics(s_test, s_anom, names, threshold, a.false_alarm_rate, timings)

    _save_for_predict(trainer, det, a, digest, metrics, emb["train"])
    png = plot_scores(
        s_test,
        s_anom,
        names,
        threshold,
        run_dir / "anomaly_scores.png",
        title=f"{det.name}: ROC-AUC {metrics['anomaly/roc_auc']:.3f}",
    )
    logger.log_image("anomaly/score_histogram", png)
    if a.compare_detectors:
        metrics.update(_compare_detectors(run_dir, emb, anom, a, seed))
    _log_summary(det.name, metrics, threshold, len(s_test), len(s_anom))
    return metrics


def _detector_config(detector: Mapping | None) -> dict:
    """The run's ``detector`` group as a plain dict; a run without one is a config error."""
    dcfg = to_plain(detector)
    if not dcfg:
        raise ConfigError(
            "no detector config; add '- detector: lof' to conf/train.yaml defaults or pass +detector=lof"
        )
    return dcfg


def _split_embeddings(trainer, cache: EmbeddingCache, spec: EmbeddingSpec) -> dict[str, Embeddings]:
    """Embeddings of train, val and test with the trainer's (best) weights, cached."""
    return {
        s: cache.get(s, lambda s=s: embed_split(trainer, s, spec)) for s in ("train", "val", "test")
    }


def _anomaly_embeddings(
    trainer,
    cache: EmbeddingCache,
    a: AnomalySettings,
    *,
    seed: int,
    source: object | None,
    holdout: ImageSet | None,
    progress: bool,
) -> tuple[Embeddings, list[str]]:
    """Embeddings of the anomaly sets' pictures (cached under the sets' fingerprints) and
    each picture's kind."""
    dm = trainer.dm
    sets = anomaly_imagesets(a, dm.classes, source=source, holdout=holdout, seed=seed)
    images, kinds, _ = cache_sets(sets, dm.image_size, dm.resize, dm.cache_dir, progress)
    key = hashlib.sha256("|".join(s.fingerprint for s in sets).encode()).hexdigest()[:12]

    def embed_anomalies() -> Embeddings:
        e = embed_array(trainer, images, a.embedding)
        e.names = np.asarray(kinds, dtype=np.str_)
        return e

    anom = cache.get(f"anomalies-{key}", embed_anomalies)
    return anom, anom.names.tolist() if anom.names is not None else kinds


def _detection_metrics(
    s_test: np.ndarray,
    s_anom: np.ndarray,
    names: list[str],
    threshold: float,
    false_alarm_rate: float,
    timings: dict[str, float],
) -> dict[str, float]:
    """``anomaly/*``: the detection figures overall and per kind, the threshold, timings, counts."""
    m = score_metrics(s_test, s_anom, threshold)
    metrics = {f"anomaly/{k}": v for k, v in m.items()}
    for kind in sorted(set(names)):
        mask = np.asarray(names) == kind
        metrics[f"anomaly/roc_auc/{kind}"] = score_metrics(s_test, s_anom[mask], None)["roc_auc"]
    metrics.update(
        {
            "anomaly/threshold": threshold,
            "anomaly/false_alarm_rate": false_alarm_rate,
            **timings,
            "anomaly/n_test": float(len(s_test)),
            "anomaly/n_anomalies": float(len(s_anom)),
        }
    )
    return metrics


def _save_for_predict(
    trainer,
    det: AnomalyDetector,
    a: AnomalySettings,
    digest: str,
    metrics: dict[str, float],
    train_e: Embeddings,
) -> None:
    """The detector (with what predict checks it against) and the train reference embeddings
    beside best.pt."""
    dm = trainer.dm
    det.meta = {
        "digest": digest,
        "embedding": a.embedding.to_meta(),
        "n_neighbors": a.n_neighbors,
        "classes": list(dm.classes),
        "image_size": dm.image_size,
        "metrics": metrics,
    }
    det.save(trainer.ckpt_dir / DETECTOR_FILE)
    save_reference(
        trainer.ckpt_dir / REFERENCE_FILE,
        train_e.emb,
        reference_labels(train_e.targets, dm.classes),
        [dm.imageset.ids[int(i)] for i in train_e.index],
        digest,
    )


def _compare_detectors(
    run_dir: Path,
    emb: dict[str, Embeddings],
    anom: Embeddings,
    a: AnomalySettings,
    seed: int,
) -> dict[str, float]:
    """Every detector of :func:`detector_configs` on the same embeddings: the table in the run
    folder (json + md) and each one's ROC-AUC as ``anomaly/compare/<detector>/roc_auc``."""
    rows = compare_detectors(
        emb["train"].emb,
        emb["val"].emb,
        emb["test"].emb,
        anom.emb,
        detector_configs(seed=seed),
        a.pca_components,
        a.false_alarm_rate,
        seed,
    )
    (run_dir / "anomaly_detectors.json").write_text(json.dumps(rows, indent=1))
    (run_dir / "anomaly_detectors.md").write_text(format_table(rows) + "\n")
    return {
        f"anomaly/compare/{r['detector']}/roc_auc": r["roc_auc"] for r in rows if "roc_auc" in r
    }


def _log_summary(
    name: str, metrics: dict[str, float], threshold: float, n_test: int, n_anom: int
) -> None:
    """One log line with the figures a reader looks at first."""
    log.info(
        "anomaly (%s): ROC-AUC %.4f  AP %.4f  precision %.3f / recall %.3f at threshold %.4g "
        "(%d test, %d anomalies)",
        name,
        metrics["anomaly/roc_auc"],
        metrics["anomaly/average_precision"],
        metrics["anomaly/precision_at_threshold"],
        metrics["anomaly/recall_at_threshold"],
        threshold,
        n_test,
        n_anom,
    )
