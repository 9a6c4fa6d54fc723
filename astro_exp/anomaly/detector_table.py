"""Every ``conf/detector`` option on the same embeddings: which detector to default to is a
measurement, not a guess. Used by ``anomaly.compare_detectors=true`` and
``scripts/compare_detectors.py RUN_DIR`` (which reads the run's cached embeddings).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np
from omegaconf import OmegaConf
from sklearn.metrics import average_precision_score, roc_auc_score

from astro_exp import tables
from astro_exp.anomaly.detectors import AnomalyDetector
from astro_exp.config import conf_options, read_conf
from astro_exp.errors import AstroExpError


def detector_configs(seed: int = 0) -> dict[str, dict[str, Any]]:
    """``{option: resolved config}`` of every ``conf/detector/*.yaml`` (``${seed}`` resolved),
    read from the package (``astro_exp.conf``), so a wheel has them too."""
    out = {}
    for name in conf_options("detector"):
        node = OmegaConf.create(
            {"seed": seed, "detector": OmegaConf.create(read_conf(f"detector/{name}.yaml"))}
        )
        cfg = OmegaConf.to_container(node, resolve=True)["detector"]
        cfg.setdefault("name", name)
        out[name] = cfg
    return out


def score_metrics(
    normal: np.ndarray, anomalous: np.ndarray, threshold: float | None
) -> dict[str, float]:
    """ROC-AUC, AP and precision/recall/false-alarm rate at ``threshold`` (anomaly = positive)."""
    y = np.r_[np.zeros(len(normal)), np.ones(len(anomalous))]
    s = np.r_[normal, anomalous]
    out = {"roc_auc": float("nan"), "average_precision": float("nan")}
    if len(normal) and len(anomalous):
        out["roc_auc"] = float(roc_auc_score(y, s))
        out["average_precision"] = float(average_precision_score(y, s))
    if threshold is not None:
        flagged = s > threshold
        tp = int((flagged & (y == 1)).sum())
        out["precision_at_threshold"] = tp / max(int(flagged.sum()), 1)
        out["recall_at_threshold"] = tp / max(len(anomalous), 1)
        out["false_alarm_rate_test"] = (
            float((normal > threshold).mean()) if len(normal) else float("nan")
        )
    return out


def compare_detectors(
    train: np.ndarray,
    val: np.ndarray,
    normal: np.ndarray,
    anomalous: np.ndarray,
    configs: Mapping[str, Mapping[str, Any]],
    pca_components: int | float | None = None,
    false_alarm_rate: float = 0.05,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """One row per detector: metrics on (test = normal, anomalies) and fit/score seconds."""
    rows = []
    for name, cfg in configs.items():
        row: dict[str, Any] = {"detector": name}
        try:
            det = AnomalyDetector(cfg, pca_components, seed).fit(train)
            det.calibrate(det.score(val), false_alarm_rate)
            t0 = time.perf_counter()
            s_normal, s_anom = det.score(normal), det.score(anomalous)
            row["score_s"] = time.perf_counter() - t0
            row["fit_s"] = det.fit_s
            row.update(score_metrics(s_normal, s_anom, det.threshold))
        except AstroExpError as e:
            row["error"] = str(e)
        rows.append(row)
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table, best ROC-AUC first."""
    cols = [
        "detector",
        "roc_auc",
        "average_precision",
        "precision_at_threshold",
        "recall_at_threshold",
        "fit_s",
        "score_s",
    ]
    cells = []
    for r in sorted(rows, key=lambda r: -np.nan_to_num(r.get("roc_auc", -1.0), nan=-1.0)):
        if "error" in r:
            cells.append([r["detector"], f"error: {r['error']}"])  # one cell spanning the metrics
            continue
        cells.append(
            [r["detector"]]
            + [f"{r[c]:.3f}" if c.endswith("_s") else f"{r[c]:.4f}" for c in cols[1:]]
        )
    return tables.format_table(cells, cols, markdown=True)
