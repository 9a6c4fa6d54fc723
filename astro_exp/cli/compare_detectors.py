"""``astro-exp compare-detectors`` (``python scripts/compare_detectors.py``): every conf/detector option on
one run's cached embeddings: ROC-AUC, AP, precision/recall at the val threshold, fit and score
seconds (a Markdown table; JSON rows with ``out=``).

    python scripts/compare_detectors.py outputs/runs/2026-01-01/12-00-00_synthetic-resnet-light
    python scripts/compare_detectors.py RUN_DIR detectors=[knn,iforest] pca=32 false_alarm_rate=0.01

The run must have had its anomaly stage (it caches ``embeddings/*.npz``); no model runs here.
A bare folder on the command line is ``run_dir``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, ListConfig, OmegaConf

from astro_exp.cli.command import command, positional_args
from astro_exp.errors import ConfigError, DataError

_RUN_DIR = positional_args("run_dir")


def _load(path: Path) -> np.ndarray:
    with np.load(path, allow_pickle=False) as z:
        return z["emb"]


def _names(value: object) -> list[str]:
    """``[knn,iforest]`` or ``"knn,iforest"`` as a list of names."""
    if isinstance(value, ListConfig):
        return [str(v) for v in OmegaConf.to_container(value)]
    return [d.strip() for d in str(value or "").split(",") if d.strip()]


@command("compare_detectors", name="compare-detectors", prepare=_RUN_DIR)
def main(cfg: DictConfig) -> int:
    """Refit every chosen detector on the run's train embeddings and score val/test/anomalies."""
    from astro_exp.anomaly.detector_table import compare_detectors, detector_configs, format_table

    run_dir = Path(cfg.run_dir)
    emb_dir = run_dir / "embeddings"
    needed = [emb_dir / f"{s}.npz" for s in ("train", "val", "test")]
    anomalies = sorted(emb_dir.glob("anomalies-*.npz"), key=lambda p: p.stat().st_mtime)
    if not all(p.is_file() for p in needed) or not anomalies:
        raise DataError(
            f"{emb_dir} lacks cached embeddings; run train.py (with the anomaly stage) first"
        )
    train, val, test = (_load(p) for p in needed)
    seed = cfg.seed
    if seed is None:
        saved = run_dir / ".hydra" / "config.yaml"
        seed = int(OmegaConf.load(saved).get("seed", 0)) if saved.is_file() else 0
    configs = detector_configs(seed=int(seed))
    wanted = _names(cfg.detectors)
    unknown = [d for d in wanted if d not in configs]
    if unknown:
        raise ConfigError(f"unknown detectors {unknown}; pick from {sorted(configs)}")
    if wanted:
        configs = {k: v for k, v in configs.items() if k in wanted}
    pca = None if cfg.pca is None else (int(cfg.pca) if float(cfg.pca) >= 1 else float(cfg.pca))
    far = float(cfg.false_alarm_rate)
    anomalous = _load(anomalies[-1])
    rows = compare_detectors(train, val, test, anomalous, configs, pca, far, int(seed))
    print(
        f"{len(train)} train, {len(val)} val, {len(test)} test embeddings; {len(anomalous)} anomalies; "
        f"dim {train.shape[1]}, pca {pca}, false-alarm rate {far}\n"
    )
    print(format_table(rows))
    if cfg.out:
        Path(cfg.out).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    main()
