"""The run folder's own record: metrics.jsonl (every value) and metrics.json (the summary).

W&B offline mode writes no summary JSON, and a user without W&B still wants the numbers,
so every run keeps these files. Lines are flushed as written: a killed run keeps them, and
a resumed run appends to the same metrics.jsonl.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np

from astro_exp.files import atomic_write


def _clean(value):
    """JSON-safe scalars: numpy/torch scalars to Python, NaN/inf to null (strict JSON)."""
    if isinstance(value, np.generic) or getattr(value, "ndim", None) == 0:  # 0-d tensor/array
        value = value.item()
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    return value


def _dumps(record: dict) -> str:
    return json.dumps({k: _clean(v) for k, v in record.items()}, default=str)


class JsonlLogger:
    """metrics.jsonl (one flushed JSON object per log call), metrics.json, predictions.jsonl."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.run_dir / "metrics.jsonl"
        torn = (
            self.path.is_file()
            and self.path.stat().st_size > 0
            and not _ends_with_newline(self.path)
        )
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - open for the run's life
        if torn:  # a killed run's last line was cut: start ours on a fresh line
            self._fh.write("\n")

    def _write(self, record: dict) -> None:
        self._fh.write(_dumps(record) + "\n")
        self._fh.flush()

    def log_config(self, config: dict) -> None:
        atomic_write(self.run_dir / "config.json", json.dumps(config, indent=1, default=str))

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self._write({"step": int(step), "time": round(time.time(), 3), **metrics})

    def log_image(self, key: str, path: str | Path) -> None:
        self._write({"image": key, "path": str(path), "time": round(time.time(), 3)})

    def log_predictions(self, key: str, images: np.ndarray, rows: list[dict]) -> None:
        """Rows (no pixels) to predictions.jsonl, replacing an earlier table of the same key."""
        path = self.run_dir / "predictions.jsonl"
        kept = []
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    if json.loads(line).get("table") != key:
                        kept.append(line)
                except json.JSONDecodeError:
                    continue
        new = [_dumps({"table": key, **row}) for row in rows]
        atomic_write(path, "".join(line + "\n" for line in [*kept, *new]))
        self._write(
            {"table": key, "path": str(path), "rows": len(rows), "time": round(time.time(), 3)}
        )

    def log_summary(self, summary: dict[str, float]) -> None:
        """Merge into metrics.json (a resumed or re-evaluated run keeps earlier keys)."""
        path = self.run_dir / "metrics.json"
        merged = {}
        if path.is_file():
            try:
                merged = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError:
                merged = {}
        merged.update({k: _clean(v) for k, v in summary.items()})
        atomic_write(path, json.dumps(merged, indent=1, sort_keys=True, default=str))

    def finish(self) -> None:
        if not self._fh.closed:
            self._fh.close()


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"
