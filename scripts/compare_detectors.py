"""Every conf/detector option on one run's cached embeddings: ROC-AUC, AP, precision/recall
at the val threshold, fit and score seconds (a Markdown table; JSON with ``--out``).

    python scripts/compare_detectors.py outputs/runs/2026-01-01/12-00-00_synthetic-resnet-light
    python scripts/compare_detectors.py RUN_DIR --detectors knn,iforest --pca 32 --false-alarm-rate 0.01

The run must have had its anomaly stage (it caches ``embeddings/*.npz``); no model runs here.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from astro_exp.anomaly.detector_table import compare_detectors, detector_configs, format_table  # noqa: E402


def _load(path: Path) -> np.ndarray:
    with np.load(path, allow_pickle=False) as z:
        return z["emb"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--detectors", default="", help="comma-separated conf/detector options (default: all)")
    parser.add_argument("--pca", type=float, default=None, help="PCA components (int) or variance fraction")
    parser.add_argument("--false-alarm-rate", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=None, help="detector seed (default: the run's seed)")
    parser.add_argument("--out", type=Path, default=None, help="also write the rows as JSON here")
    args = parser.parse_args()

    emb_dir = args.run_dir / "embeddings"
    needed = [emb_dir / f"{s}.npz" for s in ("train", "val", "test")]
    anomalies = sorted(emb_dir.glob("anomalies-*.npz"), key=lambda p: p.stat().st_mtime)
    if not all(p.is_file() for p in needed) or not anomalies:
        print(f"error: {emb_dir} lacks cached embeddings; run train.py (with the anomaly stage) first", file=sys.stderr)
        return 2
    train, val, test = (_load(p) for p in needed)
    if args.seed is None:
        saved = args.run_dir / ".hydra" / "config.yaml"
        args.seed = int(OmegaConf.load(saved).get("seed", 0)) if saved.is_file() else 0
    configs = detector_configs(seed=args.seed)
    wanted = [d for d in args.detectors.split(",") if d]
    unknown = [d for d in wanted if d not in configs]
    if unknown:
        print(f"error: unknown detectors {unknown}; pick from {sorted(configs)}", file=sys.stderr)
        return 2
    if wanted:
        configs = {k: v for k, v in configs.items() if k in wanted}
    pca = None if args.pca is None else (int(args.pca) if args.pca >= 1 else args.pca)
    rows = compare_detectors(train, val, test, _load(anomalies[-1]), configs, pca, args.false_alarm_rate, args.seed)
    print(f"{len(train)} train, {len(val)} val, {len(test)} test embeddings; {len(_load(anomalies[-1]))} anomalies; "
          f"dim {train.shape[1]}, pca {pca}, false-alarm rate {args.false_alarm_rate}\n")  # fmt: skip
    print(format_table(rows))
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
