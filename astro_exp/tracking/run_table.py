"""Rank runs: the library side of ``scripts/compare.py`` (the web app's Runs page reuses it).

A run folder is any folder holding a ``metrics.json`` (flat keys like ``test/f1_macro``),
with Hydra's ``.hydra/overrides.yaml`` (what the sweep varied) and ``.hydra/config.yaml``
(``optimized_metric``: what the sweep optimised, the default ranking key) when present.
A trial of an Optuna search also holds ``trial.json`` (its number and how it ended:
complete, pruned at epoch k, or failed); such a folder is a run even without a metrics.json
(a failed trial), so a search's table shows every trial, not only the ones that finished.
"""

from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

DEFAULT_METRIC = "test/f1_macro"
TRIAL_FILE = "trial.json"  # astro_exp.sweep.trial writes it into every trial's run folder
# (metrics.json key, column name): the columns every table shows after the ranking metric
COLUMNS = (
    ("test/acc", "test/acc"),
    ("test/f1_macro", "test/f1_macro"),
    ("test/ece", "test/ece"),
    ("time/total_s", "time_s"),
)
_SKIP_PARTS = {"wandb", ".hydra", "checkpoints", "__pycache__"}
_LOWER_IS_BETTER = ("loss", "ece", "nll", "error", "time", "brier")


@dataclass
class Run:
    path: Path
    metrics: dict[str, float]
    overrides: dict[str, str] = field(default_factory=dict)
    optimized_metric: str | None = None
    trial: dict | None = None  # trial.json of a search's trial

    @property
    def state(self) -> str | None:
        """``complete``, ``pruned`` or ``fail`` for a search's trial, None for a plain run."""
        if not self.trial or not self.trial.get("state"):
            return None
        return str(self.trial["state"]).lower()

    def get(self, key: str) -> float | None:
        """The metric as a float, None when missing, null, NaN or not a number."""
        value = self.metrics.get(key)
        try:
            value = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return None
        return None if math.isnan(value) else value


def find_runs(*roots: str | Path) -> list[Path]:
    """Every folder under ``roots`` (or a root itself) that holds a metrics.json, sorted.

    W&B's and Hydra's own sub-folders are skipped: they are part of a run, not runs.
    """
    found: set[Path] = set()
    for root in map(Path, roots):
        for name in ("metrics.json", TRIAL_FILE):
            if (root / name).is_file():
                found.add(root)
            for p in root.rglob(name):
                if not _SKIP_PARTS.intersection(p.relative_to(root).parts):
                    found.add(p.parent)
    return sorted(found)


def _overrides(run_dir: Path) -> dict[str, str]:
    path = run_dir / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return {}
    items = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    pairs = (str(item).split("=", 1) for item in items if "=" in str(item))
    return {key.lstrip("+"): value for key, value in pairs}  # +key=v / ++key=v: same axis as key=v


def load_run(run_dir: str | Path) -> Run:
    """Read one run folder; raises ValueError (with the path) on an unreadable metrics.json."""
    run_dir = Path(run_dir)
    trial = _trial(run_dir)
    try:
        metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        if trial is None:
            raise ValueError(f"{run_dir / 'metrics.json'}: missing") from None
        metrics = {}  # a trial that failed before it wrote its metrics
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{run_dir / 'metrics.json'}: {e}") from e
    if not isinstance(metrics, dict):
        raise ValueError(f"{run_dir / 'metrics.json'}: not a JSON object")
    optimized = None
    cfg_path = run_dir / ".hydra" / "config.yaml"
    if cfg_path.is_file():
        try:
            cfg = yaml.safe_load(cfg_path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError:
            cfg = {}
        optimized = cfg.get("optimized_metric") if isinstance(cfg, dict) else None
    return Run(run_dir, metrics, _overrides(run_dir), optimized, trial)


def _trial(run_dir: Path) -> dict | None:
    """The folder's trial.json, None when absent or unreadable."""
    try:
        trial = json.loads((run_dir / TRIAL_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return trial if isinstance(trial, dict) else None


def state_counts(runs: list[Run]) -> dict[str, int]:
    """How many of the runs' trials ended complete, pruned or failed (empty: no trials)."""
    counts: dict[str, int] = {}
    for run in runs:
        if run.state:
            counts[run.state] = counts.get(run.state, 0) + 1
    return counts


def default_metric(runs: list[Run]) -> str:
    """The runs' ``optimized_metric`` when some run has it in metrics.json, else test/f1_macro."""
    candidates = [r.optimized_metric for r in runs if r.optimized_metric]
    for metric in [*dict.fromkeys(candidates), DEFAULT_METRIC]:
        if any(r.get(metric) is not None for r in runs):
            return metric
    return candidates[0] if candidates else DEFAULT_METRIC


def default_mode(metric: str) -> str:
    """``min`` for losses, calibration errors and times; ``max`` for everything else."""
    return "min" if any(word in metric.lower() for word in _LOWER_IS_BETTER) else "max"


def differing_keys(runs: list[Run]) -> list[str]:
    """Override keys whose values are not the same in every run (the sweep's axes)."""
    keys = sorted({k for r in runs for k in r.overrides})
    return [k for k in keys if len({r.overrides.get(k) for r in runs}) > 1]


def rank_runs(runs: list[Run], metric: str, mode: str = "max") -> list[Run]:
    """Best first; pruned trials (scored mid-training) after finished runs, runs without
    the metric (failed trials) last (in path order, the sort is stable)."""
    if mode not in ("max", "min"):
        raise ValueError(f"mode {mode!r}: use max or min")

    def key(run: Run) -> tuple[int, float]:
        v = run.get(metric)
        if v is None:
            return (2, 0.0)
        return (1 if run.state == "pruned" else 0, -v if mode == "max" else v)

    return sorted(runs, key=key)


def common_root(paths: list[Path]) -> Path | None:
    """The deepest folder holding all ``paths`` (to show run folders relative to it)."""
    if not paths:
        return None
    try:
        return Path(os.path.commonpath([str(p.resolve()) for p in paths]))
    except ValueError:  # different drives
        return None


def run_label(run: Run, axes: list[str], root: Path | None = None) -> str:
    """``k=v, k=v`` over the differing overrides, else the folder relative to ``root``."""
    if axes:
        return ", ".join(f"{k}={run.overrides.get(k, '-')}" for k in axes)
    return _relative(run.path, root)


def _relative(path: Path, root: Path | None) -> str:
    resolved = path.resolve()
    if root is not None and resolved.is_relative_to(root):
        return str(resolved.relative_to(root)) or "."
    return str(path)


def _fmt(key: str, value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if key.startswith("time/") else f"{value:.4f}"


def table(
    runs: list[Run], metric: str, root: Path | None = None
) -> tuple[list[str], list[list[str]]]:
    """Header and string rows: rank, run, (a search's trial number and how it ended:
    complete, pruned@<epoch>, fail), one column per differing override, the metrics."""
    axes = differing_keys(runs)
    columns = [(metric, metric), *[c for c in COLUMNS if c[0] != metric]]
    trials = any(r.trial for r in runs)
    header = ["rank", "run", *(["trial", "state"] if trials else []), *axes]
    header += [name for _, name in columns]
    rows = []
    for i, run in enumerate(runs, 1):
        values = [_fmt(key, run.get(key)) for key, _ in columns]
        extra = [_trial_number(run), _state(run)] if trials else []
        rows.append(
            [
                str(i),
                _relative(run.path, root),
                *extra,
                *[run.overrides.get(k, "-") for k in axes],
                *values,
            ]
        )
    return header, rows


def _trial_number(run: Run) -> str:
    return "-" if not run.trial or run.trial.get("trial") is None else str(run.trial["trial"])


def _state(run: Run) -> str:
    if run.state == "pruned" and run.trial and run.trial.get("pruned_epoch") is not None:
        return f"pruned@{run.trial['pruned_epoch']}"
    return run.state or "-"


def write_csv(header: list[str], rows: list[list[str]], path: str | Path) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return Path(path)


def plot_bar(runs: list[Run], metric: str, path: str | Path, root: Path | None = None) -> Path:
    """Horizontal bars, best run on top, labelled by the differing overrides; a run without
    the metric gets no bar and a "-" so it is not mistaken for a zero score."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and in CI
    import matplotlib.pyplot as plt

    axes = differing_keys(runs)
    labels = [run_label(r, axes, root) for r in runs]
    values = [r.get(metric) for r in runs]
    present = [v for v in values if v is not None]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(runs) + 1.4))
    y = list(range(len(runs)))[::-1]
    ax.barh(y, [v if v is not None else 0.0 for v in values], color="#3b6ea8")
    ax.set_yticks(y, labels)
    for yi, v in zip(y, values, strict=True):
        ax.text(v or 0.0, yi, f" {v:.3f}" if v is not None else " -", va="center", fontsize=9)
    lo, hi = min([0.0, *present]), max([0.0, *present])
    if lo >= 0.0 and hi <= 1.0:
        hi = 1.0  # scores in [0, 1]: a fixed axis makes charts of different sweeps comparable
    span = (hi - lo) or 1.0
    ax.set_xlim(lo - 0.02 * span if lo < 0 else 0.0, hi + 0.12 * span)
    ax.set_xlabel(metric)
    ax.set_title(f"{len(runs)} runs ranked by {metric}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
