"""The run folder's own record: metrics.jsonl (every value) and metrics.json (the summary).

W&B offline mode writes no summary JSON, and a user without W&B still wants the numbers,
so every run keeps these two files. Lines are flushed as written: a killed run keeps them.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np


def _clean(value):
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


class JsonlLogger:
    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.run_dir / "metrics.jsonl", "a", encoding="utf-8")  # noqa: SIM115

    def _write(self, record: dict) -> None:
        self._fh.write(json.dumps({k: _clean(v) for k, v in record.items()}) + "\n")
        self._fh.flush()

    def log_config(self, config: dict) -> None:
        (self.run_dir / "config.json").write_text(json.dumps(config, indent=1, default=str))

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self._write({"step": step, "time": round(time.time(), 3), **metrics})

    def log_image(self, key: str, path: str | Path) -> None:
        self._write({"image": key, "path": str(path)})

    def log_predictions(self, key: str, images: np.ndarray, rows: list[dict]) -> None:
        with open(self.run_dir / "predictions.jsonl", "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps({"table": key, **{k: _clean(v) for k, v in row.items()}}) + "\n")

    def log_summary(self, summary: dict[str, float]) -> None:
        path = self.run_dir / "metrics.json"
        merged = json.loads(path.read_text()) if path.exists() else {}
        merged.update({k: _clean(v) for k, v in summary.items()})
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(merged, indent=1, sort_keys=True))
        os.replace(tmp, path)

    def finish(self) -> None:
        if not self._fh.closed:
            self._fh.close()
