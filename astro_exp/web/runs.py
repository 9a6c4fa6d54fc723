"""The Runs pages' data: run folders under outputs/ found and ranked by
:mod:`astro_exp.tracking.run_table` (the same numbers as ``scripts/compare.py``), addressed
by their path relative to outputs/ and looked up in the index, never opened from a
request path."""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from astro_exp.tracking.run_table import (
    COLUMNS,
    Run,
    default_metric,
    default_mode,
    differing_keys,
    find_runs,
    load_run,
    rank_runs,
)

INDEX_TTL_S = 5.0  # a new run shows up within seconds without a walk of outputs/ per request
HISTORY_KEYS = ("train/epoch_loss", "val/f1_macro", "val/acc", "val/ece")
MAX_HISTORY_LINES = 200_000


@dataclass
class RunEntry:
    """A run and its id (posix path under outputs/, e.g. ``runs/2026-11-24/16-17-03_x``)."""

    id: str
    run: Run


class RunIndex:
    """Runs under ``outputs_dir``, re-scanned at most every :data:`INDEX_TTL_S` seconds."""

    def __init__(self, outputs_dir: Path) -> None:
        self.root = outputs_dir
        self._lock = threading.Lock()
        self._at = -math.inf
        self._entries: dict[str, RunEntry] = {}
        self.skipped: list[str] = []

    def entries(self) -> dict[str, RunEntry]:
        with self._lock:
            if time.monotonic() - self._at > INDEX_TTL_S:
                self._entries, self.skipped = self._scan()
                self._at = time.monotonic()
            return self._entries

    def _scan(self) -> tuple[dict[str, RunEntry], list[str]]:
        entries: dict[str, RunEntry] = {}
        skipped: list[str] = []
        if not self.root.is_dir():
            return entries, skipped
        root = self.root.resolve()
        for path in find_runs(root):
            try:
                run = load_run(path)
            except ValueError as e:
                skipped.append(str(e))
                continue
            rel = path.resolve().relative_to(root).as_posix()
            entries[rel or "."] = RunEntry(rel or ".", run)
        return entries, skipped

    def get(self, run_id: str) -> RunEntry | None:
        return self.entries().get(run_id)

    def ranked(self, metric: str | None = None) -> tuple[list[RunEntry], str, str, list[str]]:
        """(entries best first, metric, mode, differing override keys)."""
        entries = list(self.entries().values())
        runs = [e.run for e in entries]
        metric = metric if metric else default_metric(runs)
        mode = default_mode(metric)
        by_run = {id(e.run): e for e in entries}
        ranked = [by_run[id(r)] for r in rank_runs(runs, metric, mode)]
        return ranked, metric, mode, differing_keys(runs)

    def file(self, run_id: str, name: str) -> Path | None:
        """A known artefact of a known run (the only run files the app serves)."""
        entry = self.get(run_id)
        if entry is None or name not in ("confusion_matrix.png",):
            return None
        path = entry.run.path / name
        return path if path.is_file() else None


def metric_columns(metric: str) -> list[str]:
    """The table's metric columns: the ranking metric first, then compare.py's columns."""
    return [metric, *[key for key, _ in COLUMNS if key != metric]]


def summary(entry: RunEntry, metric: str, axes: list[str]) -> dict[str, Any]:
    """One row of the runs table / ``/api/runs``."""
    run = entry.run
    return {
        "id": entry.id,
        "name": run.path.name,
        "overrides": {k: run.overrides.get(k) for k in axes},
        "metrics": {k: run.get(k) for k in metric_columns(metric)},
        "has_confusion_matrix": (run.path / "confusion_matrix.png").is_file(),
        "has_checkpoint": (run.path / "checkpoints" / "best.pt").is_file(),
    }


def per_class(run: Run, prefix: str = "test/f1/") -> dict[str, float]:
    """Per-class values (``test/f1/<class>``) in class order of the file."""
    return {
        k[len(prefix) :]: v
        for k in run.metrics
        if k.startswith(prefix) and (v := run.get(k)) is not None
    }


def details(entry: RunEntry) -> dict[str, Any]:
    """Everything the run page shows: metrics, per-class F1, config highlights, history."""
    run = entry.run
    cfg: dict[str, Any] = {}
    cfg_path = run.path / ".hydra" / "config.yaml"
    if cfg_path.is_file():
        try:
            loaded = yaml.safe_load(cfg_path.read_text(encoding="utf-8"))
            cfg = loaded if isinstance(loaded, dict) else {}
        except yaml.YAMLError:
            cfg = {}
    highlights = {
        "model": _dig(cfg, "model", "model_name"),
        "source": _dig(cfg, "source", "name"),
        "augment": _dig(cfg, "augment", "name"),
        "preprocess": _dig(cfg, "preprocess", "name"),
        "image_size": _dig(cfg, "preprocess", "image_size"),
        "epochs": _dig(cfg, "trainer", "max_epochs"),
        "task": _dig(cfg, "task", "name"),
        "optimized_metric": cfg.get("optimized_metric"),
    }
    scalars = {k: run.get(k) for k in sorted(run.metrics) if run.get(k) is not None}
    return {
        "id": entry.id,
        "name": run.path.name,
        "overrides": run.overrides,
        "config": {k: v for k, v in highlights.items() if v is not None},
        "metrics": scalars,
        "f1": per_class(run),
        "history": history(run.path),
        "has_confusion_matrix": (run.path / "confusion_matrix.png").is_file(),
    }


def history(run_dir: Path) -> dict[str, list[tuple[float, float]]]:
    """Per-epoch curves from metrics.jsonl (a torn last line is skipped)."""
    path = run_dir / "metrics.jsonl"
    curves: dict[str, list[tuple[float, float]]] = {k: [] for k in HISTORY_KEYS}
    if not path.is_file():
        return {}
    with open(path, encoding="utf-8", errors="replace") as fh:
        for n, line in enumerate(fh):
            if n >= MAX_HISTORY_LINES:
                break
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if not isinstance(rec, dict) or "epoch" not in rec:
                continue
            for key in HISTORY_KEYS:
                value = rec.get(key)
                if isinstance(value, int | float) and math.isfinite(value):
                    curves[key].append((float(rec["epoch"]), float(value)))
    return {k: v for k, v in curves.items() if v}


def _dig(cfg: dict[str, Any], *keys: str) -> Any:
    node: Any = cfg
    for key in keys:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def compare(index: RunIndex, ids: list[str], metric: str | None = None) -> dict[str, Any]:
    """The selected runs side by side, ranked like ``scripts/compare.py`` does."""
    chosen = [e for i in dict.fromkeys(ids) if (e := index.get(i)) is not None]
    runs = [e.run for e in chosen]
    metric = metric if metric else default_metric(runs) if runs else "test/f1_macro"
    mode = default_mode(metric)
    by_run = {id(e.run): e for e in chosen}
    ranked = [by_run[id(r)] for r in rank_runs(runs, metric, mode)]
    axes = differing_keys(runs)
    classes = list(dict.fromkeys(c for e in ranked for c in per_class(e.run)))
    return {
        "metric": metric,
        "mode": mode,
        "axes": axes,
        "columns": metric_columns(metric),
        "runs": [summary(e, metric, axes) | {"f1": per_class(e.run)} for e in ranked],
        "classes": classes,
    }
