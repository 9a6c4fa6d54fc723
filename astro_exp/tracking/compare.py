"""Rank runs: the library side of ``scripts/compare.py`` (the web app's Runs page reuses it)."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

COLUMNS = ("test/acc", "test/f1_macro", "test/ece", "time/total_s")


@dataclass
class Run:
    path: Path
    metrics: dict[str, float]
    overrides: dict[str, str] = field(default_factory=dict)
    optimized_metric: str | None = None

    def get(self, key: str) -> float | None:
        value = self.metrics.get(key)
        return None if value is None else float(value)


def find_runs(*roots: str | Path) -> list[Path]:
    """Every folder under ``roots`` (or a root itself) that holds a metrics.json."""
    found: set[Path] = set()
    for root in map(Path, roots):
        if (root / "metrics.json").is_file():
            found.add(root)
        found.update(p.parent for p in root.rglob("metrics.json") if "wandb" not in p.parts)
    return sorted(found)


def _overrides(run_dir: Path) -> dict[str, str]:
    path = run_dir / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return {}
    items = yaml.safe_load(path.read_text()) or []
    return dict(item.split("=", 1) for item in items if "=" in item)


def load_run(run_dir: str | Path) -> Run:
    run_dir = Path(run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    optimized = None
    cfg_path = run_dir / ".hydra" / "config.yaml"
    if cfg_path.is_file():
        optimized = (yaml.safe_load(cfg_path.read_text()) or {}).get("optimized_metric")
    return Run(run_dir, metrics, _overrides(run_dir), optimized)


def differing_keys(runs: list[Run]) -> list[str]:
    """Override keys whose values are not the same in every run (the sweep's axes)."""
    keys = sorted({k for r in runs for k in r.overrides})
    return [k for k in keys if len({r.overrides.get(k) for r in runs}) > 1]


def rank_runs(runs: list[Run], metric: str, mode: str = "max") -> list[Run]:
    """Best first; runs without the metric go last."""
    def key(run: Run) -> tuple[int, float]:
        v = run.get(metric)
        if v is None or v != v:
            return (1, 0.0)
        return (0, -v if mode == "max" else v)

    return sorted(runs, key=key)


def table(runs: list[Run], metric: str, root: Path | None = None) -> tuple[list[str], list[list[str]]]:
    axes = differing_keys(runs)
    metrics = [metric, *[c for c in COLUMNS if c != metric]]
    header = ["rank", "run", *axes, *metrics]
    rows = []
    for i, run in enumerate(runs, 1):
        name = str(run.path.relative_to(root)) if root and run.path.is_relative_to(root) else str(run.path)
        values = [f"{v:.4f}" if (v := run.get(m)) is not None else "-" for m in metrics]
        rows.append([str(i), name, *[run.overrides.get(k, "-") for k in axes], *values])
    return header, rows


def write_csv(header: list[str], rows: list[list[str]], path: str | Path) -> Path:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return Path(path)


def plot_bar(runs: list[Run], metric: str, path: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axes = differing_keys(runs)
    labels = [", ".join(f"{k}={r.overrides.get(k, '-')}" for k in axes) or r.path.name for r in runs]
    values = [r.get(metric) or 0.0 for r in runs]
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(runs) + 1.2))
    y = list(range(len(runs)))[::-1]
    ax.barh(y, values, color="#3b6ea8")
    ax.set_yticks(y, labels)
    for yi, v in zip(y, values, strict=True):
        ax.text(v, yi, f" {v:.3f}", va="center", fontsize=9)
    ax.set_xlabel(metric)
    ax.set_xlim(0, max(1.0, max(values, default=1.0)) * 1.1)
    ax.set_title(f"runs ranked by {metric}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
