"""``astro-exp compare`` (``python scripts/compare.py``): rank the runs of one or more run/multirun
folders: a table, comparison.csv and comparison.png.

    python scripts/compare.py outputs/multirun/2026-11-24/15-30-00
    python scripts/compare.py outputs/runs/ metric=test/acc
    python scripts/compare.py dirs=[sweep_a,sweep_b] metric=test/ece out=reports/

A run is any folder holding a metrics.json (or a search trial's trial.json: failed and pruned
trials are listed too, with their state); the columns after the run are the Hydra
overrides that differ between the runs. The default ranking metric is the runs'
optimized_metric (.hydra/config.yaml) when metrics.json has it, else test/f1_macro.
Bare folders on the command line are ``dirs``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from astro_exp.cli.command import command, positional_args
from astro_exp.errors import ConfigError, DataError

_DIRS = positional_args("dirs", many=True)


@command("compare", prepare=_DIRS)
def main(cfg: DictConfig) -> int:
    """Rank, print the table, write comparison.csv and comparison.png."""
    from astro_exp.tables import format_table
    from astro_exp.tracking.run_table import (
        common_root,
        default_metric,
        default_mode,
        find_runs,
        load_run,
        plot_bar,
        rank_runs,
        state_counts,
        table,
        write_csv,
    )

    dirs = (
        [Path(d) for d in OmegaConf.to_container(cfg.dirs)]
        if not isinstance(cfg.dirs, str)
        else [Path(cfg.dirs)]
    )
    if not dirs:
        raise ConfigError(
            "no folders; pass a run or multirun folder: compare.py outputs/multirun/<date>/<time>"
        )
    if cfg.mode not in ("max", "min", "auto"):
        raise ConfigError(f"mode={cfg.mode} must be max, min or auto")
    for d in dirs:
        if not d.exists():
            raise DataError(f"{d} does not exist")
    runs = []
    for path in find_runs(*dirs):
        try:
            runs.append(load_run(path))
        except ValueError as e:
            print(f"warning: skipping {e}", file=sys.stderr)
    if not runs:
        raise DataError(
            f"no run with a readable metrics.json under {', '.join(map(str, dirs))}; "
            "point compare.py at outputs/runs/... or outputs/multirun/..."
        )
    metric = cfg.metric or default_metric(runs)
    if cfg.metric and all(r.get(metric) is None for r in runs):
        known = sorted({k for r in runs for k in r.metrics if r.get(k) is not None})
        raise DataError(f"no run has {metric!r} in metrics.json; known: {', '.join(known)}")
    mode = default_mode(metric) if cfg.mode == "auto" else str(cfg.mode)

    ranked = rank_runs(runs, metric, mode)
    root = common_root(dirs)
    out = Path(cfg.out) if cfg.out else dirs[0]
    if out.is_file():
        out = out.parent
    out.mkdir(parents=True, exist_ok=True)
    header, rows = table(ranked, metric, root=root)
    print(format_table(rows, header))
    csv_path = write_csv(header, rows, out / "comparison.csv")
    png_path = plot_bar(ranked, metric, out / "comparison.png", root=root)
    print(f"\n{len(runs)} runs ranked by {metric} ({mode}); wrote {csv_path} and {png_path}")
    counts = state_counts(runs)
    if counts:  # an Optuna search: finished, pruned and failed trials
        print("trials: " + ", ".join(f"{n} {state}" for state, n in sorted(counts.items())))
    return 0


if __name__ == "__main__":
    main()
